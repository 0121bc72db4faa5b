"""Benchmark of the embedded platform: start-up, session creation, cold and warm start, file operations, API.

Run: ``.venv/bin/python benchmarks/platform_bench.py`` (about a minute). It starts its own platforms under
``results/bench/``, drives them through the load-balancer hop as a client would, prints one table and writes
``results/bench/platform.json``. Every loop is bounded in count and time; everything it starts it stops.

Beside every figure stands a same-run *reference* and the CPU that others used, so that a reader can tell a slow
machine from a busy one. Just before each measurement the benchmark times 200 keep-alive round trips to a trivial
HTTP server in a process of its own (``PlatformLibrary.core.machine.take_reference``; no platform code on the path):
its p50 is the "reference" column, and "ratio" is the figure divided by it (for file ops per second: the time
per op, 1 / rate, divided by it). A slow machine raises figure and reference together, so the ratio stays put; a
slow platform raises the ratio. "others' CPU" is the cores that processes other than the benchmark and its
platform used during the measurement (steal included, ``CpuWindow``): well above zero, the machine was busy and
the figure says little about the platform.
"""

from __future__ import annotations

import argparse
import http.client
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from hdrh.histogram import HdrHistogram

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "results" / "bench"
TIME_BUDGET = 120.0  # seconds for the whole run; every loop also stops here

sys.path.insert(0, str(ROOT / "libraries"))

from PlatformLibrary.core.machine import CpuWindow, take_reference  # noqa: E402


class Conditions:
    """Per measurement: the same-run reference taken just before it and the CPU that others used during it."""

    def __init__(self) -> None:
        self.by_measure: dict[str, dict[str, float]] = {}

    @contextmanager
    def measure(self, name: str, own_groups: tuple[int, ...] = ()) -> Iterator[None]:
        """Reference first (outside the window, its server is ours anyway), then the window around the body.

        ``own_groups``: the platform's process group, so that its CPU counts as ours and not as others'.
        """
        reference = take_reference()
        window = CpuWindow(own_groups=own_groups).start()
        try:
            yield
        finally:
            cpu = window.stop()
            self.by_measure[name] = {
                "reference_p50_ms": round(reference.p50_ms, 4),
                "reference_p95_ms": round(reference.p95_ms, 4),
                "reference_round_trips": reference.round_trips,
                "window_s": round(cpu.seconds, 2),
                "foreign_cores": round(cpu.foreign_cores, 3),
                "own_cores": round(cpu.own_cores, 3),
                "steal_cores": round(cpu.steal_cores, 3),
            }


def histogram() -> HdrHistogram:
    return HdrHistogram(1, 60_000_000, 3)  # microseconds, 1 us .. 60 s


def summary(hist: HdrHistogram, *percentiles: float) -> dict[str, float]:
    out = {"count": hist.get_total_count(), "mean_ms": round(hist.get_mean_value() / 1000, 3)}
    for p in percentiles:
        out[f"p{p:g}_ms"] = round(hist.get_value_at_percentile(p) / 1000, 3)
    return out


class Bench:
    def __init__(self, name: str, *settings: str, conditions: Conditions | None = None) -> None:
        """Starts a platform; with ``conditions``, its start-up is recorded as the measure ``startup``."""
        self.state = OUT / name
        args = [sys.executable, "-m", "testbed", "up", "--state", str(self.state)]
        for item in settings:
            args += ["--set", item]
        # The platform's group is not known before it starts; during start-up it is a child of `testbed up`,
        # which is ours, so the window counts it as ours all the same (up to its last sample, 0.2 s apart).
        with conditions.measure("startup") if conditions else nullcontext():
            started = time.monotonic()
            result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=60)
            self.startup_s = time.monotonic() - started
        if result.returncode != 0:
            raise SystemExit(f"platform did not start: {result.stderr}")
        self.endpoints = json.loads(result.stdout)
        self.url = self.endpoints["PLATFORM_API_URL"]
        self.groups: tuple[int, ...] = (
            (int(self.endpoints["PLATFORM_PGID"]),) if "PLATFORM_PGID" in self.endpoints else ()
        )
        self.http = requests.Session()

    def down(self) -> None:
        self.http.close()
        subprocess.run(
            [sys.executable, "-m", "testbed", "down", "--state", str(self.state)],
            cwd=ROOT,
            capture_output=True,
            timeout=60,
            check=True,
        )

    def create(self, user: str) -> tuple[str, float]:
        began = time.perf_counter()
        response = self.http.post(f"{self.url}/sessions", json={"userId": user, "clientId": "bench"}, timeout=10)
        took = time.perf_counter() - began
        response.raise_for_status()
        return response.json()["sessionId"], took

    def wait_running(self, sid: str, deadline_s: float = 15.0) -> dict[str, Any]:
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            body = self.http.get(f"{self.url}/sessions/{sid}", timeout=10).json()
            if body["status"] == "RUNNING":
                return body
            time.sleep(0.005)
        raise SystemExit(f"{sid} not RUNNING within {deadline_s} s")

    def capacity(self) -> dict[str, Any]:
        return self.http.get(f"{self.url}/capacity", timeout=10).json()

    def delete(self, sid: str) -> None:
        self.http.delete(f"{self.url}/sessions/{sid}", timeout=10)


def until(condition: Callable[[], bool], deadline_s: float) -> None:
    end = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > end:
            raise SystemExit("condition not met in time")
        time.sleep(0.01)


def bench_creation_and_api(rounds: int, per_round: int, api_requests: int, conditions: Conditions) -> dict[str, Any]:
    bench = Bench("warm", conditions=conditions)
    try:
        creation, warm, api = histogram(), histogram(), histogram()
        stop_at = time.monotonic() + TIME_BUDGET / 3
        with conditions.measure("creation", bench.groups):
            for r in range(rounds):
                sids = []
                for i in range(per_round):
                    sid, took = bench.create(f"u{r}-{i}")
                    creation.record_value(max(1, int(took * 1e6)))
                    sids.append(sid)
                for sid in sids:
                    bench.wait_running(sid)
                    bench.delete(sid)
                if time.monotonic() > stop_at:
                    break
        with conditions.measure("warm_start", bench.groups):
            for i in range(40):  # warm starts: one at a time, each with a ready agent in the pool
                until(lambda: bench.capacity()["warmPool"] >= 1, 10)
                sid, _ = bench.create(f"warm-{i}")
                body = bench.wait_running(sid)
                if body["startType"] == "warm":
                    warm.record_value(max(1, int(body["startDurationMs"] * 1000)))
                bench.delete(sid)
                if time.monotonic() > stop_at + TIME_BUDGET / 6:
                    break
        sid, _ = bench.create("api")
        bench.wait_running(sid)
        with conditions.measure("api", bench.groups):
            for i in range(api_requests):
                path = f"/sessions/{sid}" if i % 2 else "/health"
                began = time.perf_counter()
                bench.http.get(f"{bench.url}{path}", timeout=10).raise_for_status()
                api.record_value(max(1, int((time.perf_counter() - began) * 1e6)))
        with conditions.measure("file_ops", bench.groups):
            files = bench_files(bench, sid)
        bench.delete(sid)
        return {
            "startup_s": round(bench.startup_s, 3),
            "creation": summary(creation, 50, 95, 99),
            "warm_start": summary(warm, 50, 95, 99),
            "api": summary(api, 50, 95, 99),
            "file_ops": files,
        }
    finally:
        bench.down()


def bench_files(bench: Bench, sid: str, threads: int = 3, ops_per_thread: int = 1500) -> dict[str, Any]:
    hist = histogram()
    lock = threading.Lock()
    payload = b"x" * 1024
    stop_at = time.monotonic() + 30

    target = urlsplit(bench.url)

    def worker(n: int) -> None:
        # A lean keep-alive client (like wrk for a web server): requests' own CPU cost per call (~1 ms) would
        # otherwise compete with the platform for the same two cores and be measured as the platform's.
        conn = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
        local = histogram()
        for i in range(ops_per_thread):
            if time.monotonic() > stop_at:
                break
            path = f"/sessions/{sid}/files/bench/t{n}/f{(i // 2) % 20}.txt"  # GET reads the PUT before
            began = time.perf_counter()
            if i % 2 == 0:
                conn.request("PUT", path, body=payload, headers={"Content-Type": "application/octet-stream"})
            else:
                conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            if response.status >= 300:
                raise SystemExit(f"file op {path} -> {response.status}")
            local.record_value(max(1, int((time.perf_counter() - began) * 1e6)))
        conn.close()
        with lock:
            hist.add(local)

    began = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    elapsed = time.perf_counter() - began
    return {
        **summary(hist, 50, 95, 99),
        "ops_per_s": round(hist.get_total_count() / elapsed, 1),
        "threads": threads,
        "client": "http.client keep-alive, one connection per thread",
        "mix": "50% PUT 1 KiB (fsync) / 50% GET",
    }


def bench_cold(samples: int, conditions: Conditions) -> dict[str, Any]:
    bench = Bench("cold", "warm_pool_size=0")
    try:
        cold = histogram()
        client = histogram()
        stop_at = time.monotonic() + TIME_BUDGET / 4
        with conditions.measure("cold_start", bench.groups):
            for i in range(samples):
                began = time.perf_counter()
                sid, _ = bench.create(f"cold-{i}")
                body = bench.wait_running(sid)
                client.record_value(max(1, int((time.perf_counter() - began) * 1e6)))
                cold.record_value(max(1, int(body["startDurationMs"] * 1000)))
                bench.delete(sid)
                if time.monotonic() > stop_at:
                    break
        return {
            "cold_start": summary(cold, 50, 95, 99),
            "cold_start_client_observed": summary(client, 50, 99),
            "cold_start_delay_s": 0.25,
            "app_init_delay_s": 0.3,
        }
    finally:
        bench.down()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer samples (a smoke run)")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    scale = 0.2 if args.quick else 1.0
    conditions = Conditions()
    results = bench_creation_and_api(
        rounds=max(1, int(5 * scale)), per_round=12, api_requests=int(2000 * scale), conditions=conditions
    )
    results.update(bench_cold(samples=max(5, int(40 * scale)), conditions=conditions))
    results["conditions"] = conditions.by_measure
    (OUT / "platform.json").write_text(json.dumps(results, indent=2))
    creation, cold, warm = results["creation"], results["cold_start"], results["warm_start"]
    files, api = results["file_ops"], results["api"]
    # measure, measured, target, condition key, the figures in ms (for the ratio)
    rows: list[tuple[str, str, str, str, list[float]]] = [
        ("platform start-up", f"{results['startup_s']:.2f} s", "<= 3 s", "startup", [1000 * results["startup_s"]]),
        (
            "session creation mean / p95",
            f"{creation['mean_ms']} / {creation['p95_ms']} ms",
            "mean <= 20 ms",
            "creation",
            [creation["mean_ms"], creation["p95_ms"]],
        ),
        (
            "cold start p50 / p99",
            f"{cold['p50_ms']} / {cold['p99_ms']} ms",
            "p99 <= 1000 ms",
            "cold_start",
            [cold["p50_ms"], cold["p99_ms"]],
        ),
        (
            "warm start p50 / p95",
            f"{warm['p50_ms']} / {warm['p95_ms']} ms",
            "p95 <= 100 ms",
            "warm_start",
            [warm["p50_ms"], warm["p95_ms"]],
        ),
        (
            "file ops per second",
            f"{files['ops_per_s']}",
            ">= 1000",
            "file_ops",
            [1000 / files["ops_per_s"] if files["ops_per_s"] else 0.0],  # time per op: higher is slower
        ),
        (
            "file op p50 / p95",
            f"{files['p50_ms']} / {files['p95_ms']} ms",
            "p95 <= 5 ms",
            "file_ops",
            [files["p50_ms"], files["p95_ms"]],
        ),
        (
            "API p50 / p95",
            f"{api['p50_ms']} / {api['p95_ms']} ms",
            "p95 <= 20 ms",
            "api",
            [api["p50_ms"], api["p95_ms"]],
        ),
    ]
    print(f"{'measure':32} {'measured':24} {'target':16} {'reference p50':14} {'ratio':16} others' CPU")
    for name, value, target, key, figures in rows:
        measured = conditions.by_measure[key]
        reference = measured["reference_p50_ms"]
        ratio = " / ".join(f"{figure / reference:.0f}x" for figure in figures) if reference > 0 else "-"
        others = f"{measured['foreign_cores']:.2f} cores (steal {measured['steal_cores']:.2f})"
        print(f"{name:32} {value:24} {target:16} {f'{reference:.3f} ms':14} {ratio:16} {others}")
    print(
        "reference: p50 of 200 keep-alive round trips to a trivial local server, taken just before each measure; "
        "ratio: figure / reference (file ops per second: 1 / rate); others' CPU: cores used by other processes "
        "during the measure"
    )
    print(f"details: {OUT / 'platform.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
