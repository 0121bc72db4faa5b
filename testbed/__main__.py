"""``python -m testbed up|down|status|defects``: one command starts the platform, one stops all of it."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil

from testbed.config import DEFECTS, SettingsError, build_settings
from testbed.runtime import PROJECT_ROOT

DEFAULT_STATE = PROJECT_ROOT / "results" / "testbed"


def state_dir(arg: str | None) -> Path:
    return Path(arg or os.environ.get("TESTBED_STATE") or DEFAULT_STATE).resolve()


def read_endpoints(state: Path) -> dict[str, object] | None:
    try:
        return json.loads((state / "endpoints.json").read_text())
    except (OSError, ValueError):
        return None


def launched(state: Path) -> dict[str, object]:
    """What the platform process recorded about itself before it spawned anything (instance id, pgid)."""
    try:
        return json.loads((state / "run" / "platform.json").read_text())
    except (OSError, ValueError):
        return {}


def answers(endpoints: dict[str, object] | None, timeout: float = 1.0) -> bool:
    if not endpoints:
        return False
    try:
        with urllib.request.urlopen(f"{endpoints['PLATFORM_API_DIRECT_URL']}/health", timeout=timeout) as resp:
            return resp.status == 200
    except OSError:
        return False


def platform_processes(state: Path, instance: str | None = None) -> list[psutil.Process]:
    """Every process started for this state folder: by the environment tag all of them carry, and containers by
    their process title too (setproctitle may overwrite the environment block that /proc shows)."""
    instance = instance or launched(state).get("instance")
    title = f"testbed-agent instance={instance} " if instance else None
    found = []
    for proc in psutil.process_iter(["environ", "cmdline"]):
        with contextlib.suppress(psutil.Error):
            if proc.pid == os.getpid() or proc.status() == psutil.STATUS_ZOMBIE:
                continue
            tagged = (proc.info.get("environ") or {}).get("TESTBED_STATE_DIR") == str(state)
            if tagged or (title and " ".join(proc.info.get("cmdline") or []).startswith(title)):
                found.append(proc)
    return found


def stop_all(state: Path, grace: float = 5.0) -> int:
    """SIGTERM the process group, then SIGKILL whatever still carries the tag. Returns how many were stopped."""
    record = launched(state)
    victims = platform_processes(state)
    pgid = int(record.get("pgid") or 0)  # type: ignore[call-overload]

    def in_group(proc: psutil.Process) -> bool:
        try:
            return os.getpgid(proc.pid) == pgid
        except OSError:
            return False

    if pgid and any(in_group(p) for p in victims):  # the group still holds ours, not a recycled id
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGTERM)
    for proc in victims:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, alive = psutil.wait_procs(victims, timeout=grace)
    for proc in alive + platform_processes(state):
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(alive, timeout=5)
    leftover = platform_processes(state)
    if leftover:
        raise SystemExit(f"could not stop {len(leftover)} process(es): {[p.pid for p in leftover]}")
    if record.get("instance"):
        from testbed.cgroups import Limits

        Limits(str(record["instance"]), 0, 0).remove_all()
    with contextlib.suppress(FileNotFoundError):
        (state / "endpoints.json").unlink()
    return len(victims)


def cmd_up(args: argparse.Namespace) -> int:
    state = state_dir(args.state)
    try:
        settings = build_settings([*(args.set or []), *(["aws_face=true"] if args.aws_face else [])], args.defect or [])
    except SettingsError as exc:
        print(f"testbed up: {exc}", file=sys.stderr)
        return 2
    existing = read_endpoints(state)
    if answers(existing):
        if existing and sorted(existing.get("DEFECTS") or []) != sorted(settings.defects):  # type: ignore[arg-type]
            print(
                f"testbed up: a platform with defects {existing.get('DEFECTS')} already runs at {state}; "
                "run 'python -m testbed down' first",
                file=sys.stderr,
            )
            return 2
        if existing and bool(existing.get("AWS_FACE_URL")) != settings.aws_face:
            print(
                f"testbed up: a platform {'with' if existing.get('AWS_FACE_URL') else 'without'} the AWS face already "
                f"runs at {state}; run 'python -m testbed down' first",
                file=sys.stderr,
            )
            return 2
        print(json.dumps(existing, indent=2))
        return 0
    stop_all(state)  # leftovers of a run that was killed: start clean
    state.mkdir(parents=True, exist_ok=True)
    (state / "settings.json").write_text(settings.to_json())
    (state / "clock-skew").unlink(missing_ok=True)
    (state / "clock-skew-containers").unlink(missing_ok=True)
    log = open(state / "platform.log", "ab")  # noqa: SIM115 - handed to the child
    env = {**os.environ, "TESTBED_STATE_DIR": str(state), "PYTHONPATH": str(PROJECT_ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "testbed.platform", "--state", str(state)],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=log,
        stderr=log,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        endpoints = read_endpoints(state)
        if endpoints and endpoints.get("PLATFORM_PID") == proc.pid and answers(endpoints, 0.5):
            print(json.dumps(endpoints, indent=2))
            return 0
        if proc.poll() is not None:
            tail = (state / "platform.log").read_text(errors="replace").splitlines()[-15:]
            print("testbed up: the platform exited during start-up:\n  " + "\n  ".join(tail), file=sys.stderr)
            stop_all(state)
            return 1
        time.sleep(0.02)
    print(f"testbed up: not answering after {args.timeout} s; see {state / 'platform.log'}", file=sys.stderr)
    stop_all(state)
    return 1


def cmd_down(args: argparse.Namespace) -> int:
    state = state_dir(args.state)
    count = stop_all(state)
    print(f"testbed down: stopped {count} process(es) of {state}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    endpoints = read_endpoints(state_dir(args.state))
    if answers(endpoints):
        print(json.dumps(endpoints, indent=2))
        return 0
    print("testbed status: no platform answers", file=sys.stderr)
    return 1


def cmd_defects(_: argparse.Namespace) -> int:
    for name, text in DEFECTS.items():
        print(f"{name:28} {text}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testbed", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the platform (detached) and print its endpoints")
    up.add_argument("--state", help="state folder (default results/testbed or $TESTBED_STATE)")
    up.add_argument("--defect", action="append", help="switch on a named defect (see 'defects')")
    up.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a setting")
    up.add_argument("--timeout", type=float, default=15.0)
    up.add_argument(
        "--aws-face",
        action="store_true",
        help="also serve ECS and FIS APIs over the containers (docs/aws-emulation.md)",
    )
    up.set_defaults(func=cmd_up)
    for name, func, text in (
        ("down", cmd_down, "stop every process of the platform"),
        ("status", cmd_status, "print the endpoints when the platform answers"),
    ):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("--state")
        cmd.set_defaults(func=func)
    sub.add_parser("defects", help="list the defect switches").set_defaults(func=cmd_defects)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
