"""moto server as its own process on 127.0.0.1 with a free port, reported through a ready file.

The platform's DynamoDB and CloudWatch. Run: ``python -m testbed.motoserver --ready-file PATH``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading

from moto.server import ThreadedMotoServer


def main() -> None:
    parser = argparse.ArgumentParser(prog="testbed-moto")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ready-file", required=True)
    args = parser.parse_args()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=args.port, verbose=False)
    server.start()
    _, port = server.get_host_and_port()
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
