"""moto server as its own process on 127.0.0.1 with a free port, reported through a ready file.

The platform's DynamoDB and CloudWatch. Run: ``python -m testbed.motoserver --ready-file PATH``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import signal
import threading

from moto import backends
from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server


def cache_backend_list() -> None:
    """Answer moto's list of its own service packages from memory.

    moto's request dispatcher lists and stats its whole package folder (about 55 directory entries) on every
    request to decide whether the Host names a backend; the folder does not change while the server runs. This
    is a third of moto's CPU per DynamoDB write, and it sits on the session-creation path.
    """
    listed = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = functools.cache(lambda: listed)  # type: ignore[assignment]


def main() -> None:
    parser = argparse.ArgumentParser(prog="testbed-moto")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ready-file", required=True)
    args = parser.parse_args()
    cache_backend_list()
    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def serialised(environ: dict[str, object], start_response: object) -> list[bytes]:
        # One request at a time through moto's backends: DynamoDB checks a condition and writes atomically per
        # item; moto's in-memory backend does not, so without this two racing conditional writes could both pass.
        with lock:
            return list(app(environ, start_response))

    server = make_server("127.0.0.1", args.port, serialised, threaded=True, request_handler=MotoRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    tmp = f"{args.ready_file}.tmp"
    with open(tmp, "w") as handle:
        json.dump({"port": port, "pid": os.getpid()}, handle)
    os.replace(tmp, args.ready_file)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()


if __name__ == "__main__":
    main()
