"""Coordinated omission, shown: p99 latency of a target that stalls, corrected versus uncorrected.

Run: ``.venv/bin/python benchmarks/stall.py [--rate 100] [--duration 10] [--stall-every 5] [--stall-for 1]``.
The target (``bench_target.py``) stops answering for ``--stall-for`` seconds every ``--stall-every`` seconds.
The load engine sends on a fixed schedule over one connection (as ``wrk2 -c1`` does): requests due during a stall
wait and go out late. Measured from the actual send (uncorrected), they look fast; measured from their intended
send time (corrected, what the suite reports) they carry the stall. A stall of S seconds in every T seconds should
push about S/T of the requests above the normal latency, so a corrected p99 near S is the truth.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "libraries"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from arrival_rate import start_target  # noqa: E402
from PlatformLibrary.load.engine import HttpRequest, LoadRun  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--stall-every", type=float, default=5.0)
    parser.add_argument("--stall-for", type=float, default=1.0)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    target, url = start_target("--stall-every", str(args.stall_every), "--stall-for", str(args.stall_for))
    request = HttpRequest("GET", "/health")
    try:
        result = LoadRun(
            "stall",
            base_url=url,
            scenario=lambda i: request,
            rate=args.rate,
            duration=args.duration,
            max_vus=1,
            on_busy="queue",
            request_timeout=args.stall_for + 5,
        ).run()
    finally:
        target.terminate()
        target.wait(5)
    corrected, uncorrected = result.percentile(99), result.percentile(99, corrected=False)
    print(
        f"target stalls {args.stall_for:g} s every {args.stall_every:g} s; {args.rate:g}/s for {args.duration:g} s "
        f"over 1 connection: {result.sent} sent, {result.late} late, {result.dropped} dropped"
    )
    for pct in (50, 90, 99, 99.9):
        print(
            f"  p{pct:<5g} corrected {result.percentile(pct) * 1000:9.1f} ms   "
            f"uncorrected {result.percentile(pct, corrected=False) * 1000:9.1f} ms"
        )
    print(
        f"p99 corrected / uncorrected = {corrected / uncorrected:.0f}x "
        f"({corrected * 1000:.1f} ms vs {uncorrected * 1000:.1f} ms)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
