"""Arrival-rate accuracy of the load engine: does an open model send at the rate it was asked for?

Run: ``.venv/bin/python benchmarks/arrival_rate.py [--rate 1000] [--duration 10]``. Starts the benchmark target
(``bench_target.py``) on CPU 1, runs a constant arrival rate from CPU 0 and compares the actual send times with
the schedule: overall rate, the worst one-second window, late and dropped sends. Goal: within +-1 % at a rate the
machine can hold. Every loop is bounded; the target is stopped at the end.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "libraries"))

from PlatformLibrary.load.engine import HttpRequest, LoadRun  # noqa: E402


def start_target(*extra: str, cpu: int = 1) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "benchmarks" / "bench_target.py"), "--cpu", str(cpu), *extra],
        stdout=subprocess.PIPE,
        text=True,
    )
    port = int(proc.stdout.readline().split()[1])  # type: ignore[union-attr]
    scheme = "https" if "--tls-cert" in extra else "http"
    return proc, f"{scheme}://127.0.0.1:{port}"


def measure(url: str, rate: float, duration: float) -> dict[str, float]:
    request = HttpRequest("GET", "/health")
    run = LoadRun(
        "accuracy",
        base_url=url,
        scenario=lambda i: request,
        rate=rate,
        duration=duration,
        keep_send_times=True,
        max_vus=200,
    )
    result = run.run()
    times = run.send_times or []
    windows = [sum(1 for t in times if s <= t < s + 1) for s in range(int(duration))]
    worst = max(abs(w - rate) / rate for w in windows) if windows else 0.0
    overall = len([t for t in times if t < duration]) / duration
    return {
        "rate": rate,
        "duration": duration,
        "scheduled": result.scheduled,
        "sent": result.sent,
        "dropped": result.dropped,
        "late": result.late,
        "max_lateness_ms": result.max_lateness * 1000,
        "achieved_rate": overall,
        "error_pct": 100 * (overall - rate) / rate,
        "worst_second_error_pct": 100 * worst,
        "p99_ms": result.percentile(99) * 1000,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, nargs="*", default=[100.0, 1000.0, 3000.0], help="requests/s")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per rate")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    target, url = start_target()
    try:
        print(
            f"{'target/s':>9} {'achieved/s':>11} {'error':>8} {'worst 1 s':>10} {'sent':>7} {'dropped':>8} "
            f"{'late':>6} {'max late':>9} {'p99':>9}"
        )
        for rate in args.rate:
            m = measure(url, rate, args.duration)
            print(
                f"{rate:9.0f} {m['achieved_rate']:11.2f} {m['error_pct']:+7.3f}% {m['worst_second_error_pct']:9.2f}% "
                f"{m['sent']:7d} {m['dropped']:8d} {m['late']:6d} {m['max_lateness_ms']:7.1f}ms {m['p99_ms']:7.2f}ms"
            )
    finally:
        target.terminate()
        target.wait(5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
