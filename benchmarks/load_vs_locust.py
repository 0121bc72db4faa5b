"""Throughput per core of the suite's load engine against Locust's FastHttpUser, on the same local target.

Run: ``.venv/bin/python benchmarks/load_vs_locust.py [--users 50] [--duration 15] [--https]``.

Locust is not part of the suite: install it in a venv of its own first (``requirements-bench.txt``)::

    python3 -m venv results/bench-venv && results/bench-venv/bin/pip install -r requirements-bench.txt

(or pass ``--locust /path/to/locust``). Both generators run the same closed model (N users, each sends ``GET
/health`` as soon as its previous answer arrived, keep-alive) for the same time against the same target
(``bench_target.py`` on CPU 1), each pinned to CPU 0 in a process of its own. Throughput per core is requests
answered divided by the CPU seconds the generator's process used while it ran (its start-up counted too, for both).
Goal: the suite's engine does at least as much per core as Locust's FastHttpUser (ratio >= 1.0).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from arrival_rate import start_target  # noqa: E402
from bench_target import self_signed_certificate  # noqa: E402

LOCUSTFILE = """
from locust import task, constant
from locust.contrib.fasthttp import FastHttpUser


class Health(FastHttpUser):
    wait_time = constant(0)
    insecure = {insecure}  # https against the benchmark's self-signed certificate

    @task
    def health(self):
        self.client.get("/health")
"""

OURS = """
import json, sys, time
sys.path.insert(0, {libraries!r})
from PlatformLibrary.load.engine import HttpRequest, LoadRun
request = HttpRequest("GET", "/health")
result = LoadRun("bench", base_url={url!r}, scenario=lambda i: request, model="closed", users={users},
                 duration={duration}, ca_bundle={ca_bundle!r}).run()
print(json.dumps({{"completed": result.completed, "ok": result.ok, "elapsed": result.elapsed}}))
"""


def pin_cpu0() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})


def run_child(command: list[str], **kwargs) -> tuple[subprocess.CompletedProcess, float, float]:
    """Runs a generator; returns it, its CPU seconds (user + system of the child) and its wall time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, preexec_fn=pin_cpu0, check=False, **kwargs)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return done, cpu, wall


def ours(url: str, users: int, duration: float, ca_bundle: str | None = None) -> dict[str, float]:
    code = OURS.format(libraries=str(ROOT / "libraries"), url=url, users=users, duration=duration, ca_bundle=ca_bundle)
    done, cpu, wall = run_child([sys.executable, "-c", code], timeout=duration + 120)
    if done.returncode != 0:
        raise SystemExit(f"the suite's engine failed: {done.stderr[-2000:]}")
    data = json.loads(done.stdout.strip().splitlines()[-1])
    return {"requests": data["ok"], "cpu": cpu, "wall": wall, "run": data["elapsed"]}


def locust(binary: str, url: str, users: int, duration: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        locustfile = Path(tmp) / "locustfile.py"
        locustfile.write_text(LOCUSTFILE.format(insecure=url.startswith("https")))
        command = [
            binary,
            "-f",
            str(locustfile),
            "--headless",
            "--host",
            url,
            "--users",
            str(users),
            "--spawn-rate",
            str(users),
            "--run-time",
            f"{int(duration)}s",
            "--csv",
            str(Path(tmp) / "out"),
            "--only-summary",
            "--loglevel",
            "ERROR",
            "--stop-timeout",
            "5",
        ]
        done, cpu, wall = run_child(command, timeout=duration + 120)
        stats = Path(tmp) / "out_stats.csv"
        if not stats.is_file():
            raise SystemExit(f"locust wrote no statistics (exit {done.returncode}): {done.stderr[-2000:]}")
        with stats.open() as handle:
            rows = {row["Name"]: row for row in csv.DictReader(handle)}
        total = rows["Aggregated"]
        requests = int(total["Request Count"]) - int(total["Failure Count"])
    return {"requests": requests, "cpu": cpu, "wall": wall, "run": duration}


def find_locust(given: str | None) -> str | None:
    for candidate in (given, str(ROOT / "results" / "bench-venv" / "bin" / "locust"), shutil.which("locust")):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per generator")
    parser.add_argument("--locust", help="the locust executable (default: results/bench-venv/bin/locust, PATH)")
    parser.add_argument("--https", action="store_true", help="TLS to the target (a self-signed certificate)")
    args = parser.parse_args()
    binary = find_locust(args.locust)
    if binary is None:
        print(
            "Locust is not installed. Install it in a venv of its own:\n"
            "  python3 -m venv results/bench-venv && results/bench-venv/bin/pip install -r requirements-bench.txt",
            file=sys.stderr,
        )
        return 2
    with tempfile.TemporaryDirectory() as tls_dir:
        extra, ca_bundle = (), None
        if args.https:
            ca_bundle = self_signed_certificate(Path(tls_dir))
            extra = ("--tls-cert", ca_bundle, "--tls-key", str(Path(tls_dir) / "key.pem"))
        target, url = start_target(*extra, cpu=1)
        try:
            mine = ours(url, args.users, args.duration, ca_bundle)
            theirs = locust(binary, url, args.users, args.duration)
        finally:
            target.terminate()
            target.wait(5)
    print(
        f"{args.users} users, {args.duration:g} s, closed model against bench_target.py (CPU 1) over "
        f"{'https' if args.https else 'http'}, generator on CPU 0"
    )
    print(f"{'generator':28} {'requests':>9} {'req/s':>9} {'CPU s':>7} {'req per CPU s':>14}")
    rows = {}
    for name, m in (("suite engine (load.engine)", mine), ("Locust FastHttpUser", theirs)):
        per_core = m["requests"] / m["cpu"] if m["cpu"] else 0.0
        rows[name] = per_core
        print(f"{name:28} {m['requests']:9d} {m['requests'] / m['run']:9.0f} {m['cpu']:7.2f} {per_core:14.0f}")
    ratio = rows["suite engine (load.engine)"] / rows["Locust FastHttpUser"]
    print(f"throughput per core, suite engine / Locust FastHttpUser = {ratio:.2f}x (goal >= 1.0x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
