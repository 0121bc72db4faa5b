"""Process entry point: parse arguments, bind the admin API on loopback, run until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from pathlib import Path

from .api import AdminApi
from .errors import ApiError
from .proxy import STREAM_LIMIT, Registry, is_loopback, join_hostport, write_json_atomic

log = logging.getLogger("faultproxy")

EXIT_USAGE = 2
EXIT_FAILURE = 1


class StartupError(Exception):
    """A problem that stops start-up; its message is printed without a traceback."""

    def __init__(self, message: str, code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.code = code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m testbed.faultproxy",
        description="TCP fault proxy with a Toxiproxy-compatible admin API (loopback only).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="admin API address; loopback only (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8474, help="admin API port; 0 picks a free one (default 8474)")
    parser.add_argument("--config", type=Path, help="JSON list of proxies to create at start (Toxiproxy format)")
    parser.add_argument("--ready-file", type=Path, help='written as {"admin_port": N, "pid": PID} once serving')
    parser.add_argument("--state-file", type=Path, help="proxies and active toxics, rewritten after every change")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parser.add_argument(
        "--exit-with-parent",
        action="store_true",
        help="stop (and with it every toxic) when the process that started this one ends, even by SIGKILL",
    )
    return parser


async def _parent_gone(parent: int, stop: asyncio.Event) -> None:
    """Set ``stop`` once this process's parent has ended (the kernel then hands this process to another parent)."""
    while not stop.is_set():
        if os.getppid() != parent:
            log.info("the process that started this one (pid %s) has ended", parent)
            stop.set()
            return
        await asyncio.sleep(0.25)


def _warn_previous_state(path: Path) -> None:
    """A state file left by a run that did not stop cleanly means faults may have been active at a crash."""
    try:
        previous = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if not isinstance(previous, dict) or not previous.get("running"):
        return
    active = [
        f"{name}:{toxic.get('name')}"
        for name, proxy in (previous.get("proxies") or {}).items()
        for toxic in (proxy.get("toxics") or [])
    ]
    log.warning(
        "state file %s is from a run (pid %s) that did not stop cleanly; toxics active then: %s",
        path,
        previous.get("pid"),
        ", ".join(active) or "none",
    )


def _load_config(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise StartupError(f"cannot read config {path}: {exc.strerror or exc}", EXIT_USAGE) from None
    except ValueError as exc:
        raise StartupError(f"config {path} is not valid JSON: {exc}", EXIT_USAGE) from None


async def serve(args: argparse.Namespace) -> None:
    registry = Registry(state_file=args.state_file)
    if args.state_file is not None:
        _warn_previous_state(args.state_file)
    api = AdminApi(registry)
    host = "127.0.0.1" if args.host == "localhost" else args.host
    try:
        server = await asyncio.start_server(api.serve_connection, host, args.port, limit=STREAM_LIMIT)
    except OSError as exc:
        raise StartupError(f"cannot listen on {host}:{args.port}: {exc.strerror or exc}") from None
    registry.admin_port = server.sockets[0].getsockname()[1]
    if args.config is not None:
        config = _load_config(args.config)
        try:
            await registry.populate(config)
        except ApiError as exc:
            server.close()
            raise StartupError(f"config {args.config}: {exc.message}", EXIT_USAGE) from None
    registry.write_state(running=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    watch = asyncio.create_task(_parent_gone(os.getppid(), stop)) if args.exit_with_parent else None
    if args.ready_file is not None:
        write_json_atomic(args.ready_file, {"admin_port": registry.admin_port, "pid": os.getpid()})
    log.info("admin API on http://%s (pid %s)", join_hostport(host, registry.admin_port), os.getpid())
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        if watch is not None:
            watch.cancel()
        server.close()
        await registry.shutdown()
        if args.ready_file is not None:
            with contextlib.suppress(OSError):
                args.ready_file.unlink()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    log_format = "%(asctime)s faultproxy %(levelname)s %(message)s"
    logging.basicConfig(level=args.log_level, format=log_format, stream=sys.stderr)
    if not is_loopback(args.host):
        print(
            f"faultproxy: refusing to bind admin API to {args.host!r}: only loopback addresses "
            "(127.0.0.0/8, ::1, localhost) are allowed",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if not 0 <= args.port <= 65535:
        print(f"faultproxy: --port must be 0-65535, got {args.port}", file=sys.stderr)
        return EXIT_USAGE
    try:
        asyncio.run(serve(args))
    except StartupError as exc:
        print(f"faultproxy: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        pass
    return 0
