"""``python -m minimal_deployment up|down|status --state DIR``: start, stop or ask the minimal deployment.

``up`` starts one detached process (its own session; its PID in ``<state>/pid``) that runs moto, the session API
and its loops, all bound to 127.0.0.1, waits until the API answers ``GET /health``, and prints what a profile needs
(also written to ``<state>/endpoints.json``, which ``resources/profiles/aws_minimal.py`` reads). ``down`` stops that
process by its PID (SIGTERM, then SIGKILL) and nothing else. ``serve`` is what ``up`` runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
DEFAULT_STATE = PROJECT / "results" / "aws-minimal-deployment"
ENDPOINTS = "endpoints.json"
SETTINGS = {  # option (a Settings field) -> (its type, its key in endpoints.json)
    "start_delay": (float, "START_DELAY"),
    "idle_timeout": (float, "IDLE_TIMEOUT"),
    "ttl": (float, "SESSION_TTL"),
    "restart_max": (int, "RESTART_MAX"),
    "restart_window": (float, "RESTART_WINDOW"),
}


def _health(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/health", timeout=timeout) as answer:
            return answer.status == 200
    except OSError:
        return False


def _ours(pid: int, state: Path) -> bool:
    """The process ``pid`` is this state's service (not a PID the system has given to something else since)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    words = [w.decode(errors="replace") for w in cmdline]
    return "minimal_deployment" in words and "serve" in words and str(state) in words


def serve(state: Path, options: dict) -> None:
    from moto.server import ThreadedMotoServer

    from .service import Sessions, Settings, api_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    aws_url = f"http://{host}:{port}"
    # moto moves a described ECS task from RUNNING towards STOPPED on its own (model ecs::task, manual progression,
    # one step per DescribeTasks): told to wait for more describes than any run makes, a task runs until stopped.
    request = urllib.request.Request(
        aws_url + "/moto-api/state-manager/set-transition",
        data=json.dumps({"model_name": "ecs::task", "transition": {"progression": "manual", "times": 10**12}}).encode(),
        method="POST",
    )
    urllib.request.urlopen(request, timeout=10).close()
    settings = Settings(state=state, **options)
    sessions = Sessions(settings, aws_url)
    sessions.create_resources()
    server = api_server(sessions)
    api_url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True, name="api").start()
    sessions.start_loops()
    endpoints = {
        "ALB_URL": api_url,
        "PLATFORM_API_URL": api_url,
        "AWS_REGION": settings.region,
        "AWS_ENDPOINT_URL": aws_url,
        "ECS_CLUSTER": settings.cluster,
        "ECS_SERVICE": settings.service,
        "ECS_TASK_FAMILY": settings.family,
        "SESSIONS_TABLE": settings.table,
        "STATE_DIR": str(state),
        "EFS_ROOT": str(sessions.efs),
        "PID": os.getpid(),
        **{key: getattr(settings, name) for name, (_, key) in SETTINGS.items()},
    }
    scratch = state / f"{ENDPOINTS}.tmp"
    scratch.write_text(json.dumps(endpoints, indent=2) + "\n", encoding="utf-8")
    os.replace(scratch, state / ENDPOINTS)
    print(f"minimal deployment: API {api_url}, moto {aws_url}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    sessions.stop_loops()
    server.shutdown()
    moto.stop()


def up(state: Path, options: dict, timeout: float = 60.0) -> int:
    pid_file = state / "pid"
    if pid_file.is_file() and _ours(int(pid_file.read_text() or 0), state):
        print(f"minimal deployment already runs (PID {pid_file.read_text().strip()}); down first", file=sys.stderr)
        return 1
    state.mkdir(parents=True, exist_ok=True)
    for old in ("efs", "scratch"):
        shutil.rmtree(state / old, ignore_errors=True)
    (state / ENDPOINTS).unlink(missing_ok=True)
    command = [sys.executable, "-m", "minimal_deployment", "serve", "--state", str(state)]
    for name, value in options.items():
        command += [f"--{name.replace('_', '-')}", str(value)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(PROJECT), os.environ.get("PYTHONPATH")])))
    with open(state / "service.log", "ab") as log:
        process = subprocess.Popen(
            command, cwd=PROJECT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
        )
    pid_file.write_text(str(process.pid), encoding="utf-8")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            print(f"minimal deployment exited with {process.returncode}; see {state / 'service.log'}", file=sys.stderr)
            return 1
        try:
            endpoints = json.loads((state / ENDPOINTS).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            endpoints = None
        if endpoints and _health(endpoints["PLATFORM_API_URL"]):
            print(json.dumps(endpoints, indent=2))
            return 0
        time.sleep(0.1)
    print(f"minimal deployment did not answer within {timeout:g} s; see {state / 'service.log'}", file=sys.stderr)
    down(state)
    return 1


def down(state: Path, timeout: float = 10.0) -> int:
    pid_file = state / "pid"
    try:
        pid = int(pid_file.read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        print(f"minimal deployment: nothing to stop in {state}")
        return 0
    if _ours(pid, state):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _ours(pid, state) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _ours(pid, state):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reaped here when this process started it (the tests do)
    pid_file.unlink(missing_ok=True)
    (state / ENDPOINTS).unlink(missing_ok=True)
    print(f"minimal deployment stopped (PID {pid})")
    return 0


def status(state: Path) -> int:
    try:
        endpoints = json.loads((state / ENDPOINTS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return 1
    return 0 if _health(endpoints["PLATFORM_API_URL"]) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m minimal_deployment", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["up", "down", "status", "serve"])
    parser.add_argument("--state", default=os.environ.get("AWS_MINIMAL_STATE") or str(DEFAULT_STATE))
    for name, (kind, _) in SETTINGS.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, default=None)
    args = parser.parse_args(argv)
    state = Path(args.state).resolve()
    options = {name: getattr(args, name) for name in SETTINGS if getattr(args, name) is not None}
    if args.command == "serve":
        serve(state, options)
        return 0
    return {"up": lambda: up(state, options), "down": lambda: down(state), "status": lambda: status(state)}[
        args.command
    ]()


if __name__ == "__main__":
    sys.exit(main())
