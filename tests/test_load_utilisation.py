"""Resource utilisation over time: the sampler keeps its samples as a bounded series, and `Stop Resource Sampling`
writes them for the report, so its max and mean differ when the load does."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import boto3
import pytest
from PlatformLibrary import PlatformLibrary
from PlatformLibrary.core.endpoints import Endpoints
from PlatformLibrary.core.profile import Profile
from PlatformLibrary.load import utilisation
from PlatformLibrary.load.utilisation import UtilisationSampler

from tests.test_aws_support import CLUSTER, REGION, SERVICE, make_library, mocked_aws, use_fake_credentials

# A "container" of its own process group: busy for 0.4 s, idle for 0.4 s, twice.
BURNER = """
import time
for _ in range(2):
    end = time.monotonic() + 0.4
    while time.monotonic() < end:
        pass
    time.sleep(0.4)
time.sleep(30)
"""


def sample(t: float, cpu: float, memory: float) -> dict[str, float]:
    return {"t": t, "cpu": cpu, "memory": memory, "hostCpu": cpu / 2, "hostMemory": memory / 10, "containers": 1}


def test_the_series_follows_the_load_and_the_summary_keeps_mean_and_peak():
    sampler = UtilisationSampler(None, "", 0.5, 1.0, 1.0)
    for i, cpu in enumerate([99.0, 10.0, 80.0, 20.0, 60.0]):  # the first covers the warm-up: left out
        sampler.add(sample(0.5 * i, cpu, 30.0 + i))
    points = sampler.series()
    assert [p["t"] for p in points] == [0.5, 1.0, 1.5, 2.0]
    assert [p["cpuPercent"] for p in points] == [10.0, 80.0, 20.0, 60.0]
    summary = sampler.summary()
    assert summary["samples"] == 4 and summary["cpuPercent"] == 42.5 and summary["cpuPercentPeak"] == 80.0
    assert summary["memoryPercent"] == 34.0 == max(p["memoryPercent"] for p in points)


def test_a_long_window_merges_neighbours_and_stays_bounded():
    sampler = UtilisationSampler(None, "", 0.5, 1.0, 1.0, max_points=10)
    for i in range(101):
        sampler.add(sample(0.5 * i, float(i % 2) * 50, float(i)))
    points = sampler.series()
    assert len(points) <= 10 and sampler.stride > 1
    assert [p["t"] for p in points] == sorted(p["t"] for p in points)
    # CPU averages over the merged samples (a rate), memory keeps the peak (what its bound is about).
    assert all(p["cpuPercent"] == pytest.approx(25.0, abs=5.0) for p in points)
    assert max(p["memoryPercent"] for p in points) == 100.0
    assert sampler.summary()["samples"] == 100  # the totals count every sample, not the points


@pytest.fixture
def burner():
    proc = subprocess.Popen([sys.executable, "-c", BURNER, "session=s-burn"], start_new_session=True)
    yield proc
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(5)


def test_stop_resource_sampling_writes_the_samples_over_time(tmp_path, burner):
    state = tmp_path / "state"
    state.mkdir()
    (state / "endpoints.json").write_text(json.dumps({"PLATFORM_PGID": burner.pid, "PLATFORM_INSTANCE": "unit"}))
    (state / "settings.json").write_text(json.dumps({"container_memory_limit": 2**30, "container_cpu_quota": 1.0}))
    library = PlatformLibrary(run_id="unit")
    library.profile = Profile(
        variables={
            "TARGET": "embedded",
            "PROFILE": "local",
            "PLATFORM_STATE_DIR": str(state),
            "METRICS_DIR": str(tmp_path / "metrics"),
        }
    )
    library.endpoints = Endpoints(library.profile)
    library.keywords["start_resource_sampling"](interval=timedelta(seconds=0.1))
    time.sleep(1.8)
    usage = library.keywords["stop_resource_sampling"]()
    (path,) = (tmp_path / "metrics").glob("utilisation-*.jsonl")
    (window,) = [json.loads(line) for line in path.read_text().splitlines()]
    assert window["kind"] == "utilisation" and window["source"] == "psutil" and window["summary"] == usage
    points = window["points"]
    assert len(points) == usage["samples"] >= 8 and window["intervalS"] == 0.1
    assert [p["t"] for p in points] == sorted(p["t"] for p in points)
    assert {p["containers"] for p in points} == {1}
    cpu = [p["cpuPercent"] for p in points]
    # Busy, idle, busy, idle: the peak is well above the mean and the idle samples well below the peak.
    assert max(cpu) > 1.3 * usage["cpuPercent"] and min(cpu) < 0.5 * max(cpu), cpu
    assert usage["cpuPercent"] == pytest.approx(sum(cpu) / len(cpu), abs=0.05)
    recorded = [json.loads(line) for p in (tmp_path / "metrics").glob("[0-9]*.jsonl") for line in p.open()]
    assert {r["name"]: r["value"] for r in recorded}["utilisation_cpuPercent"] == usage["cpuPercent"]


def test_on_aws_the_cloudwatch_datapoints_are_the_series(tmp_path, monkeypatch):
    """On AWS nothing is sampled here: the window's series is what CloudWatch holds for the ECS service, one
    datapoint a minute, over a window of 150 s (the library's clock is moved on when sampling stops)."""
    use_fake_credentials(monkeypatch)
    with mocked_aws():
        cloudwatch = boto3.client("cloudwatch", region_name=REGION)
        dims = [{"Name": "ClusterName", "Value": CLUSTER}, {"Name": "ServiceName", "Value": SERVICE}]
        now = datetime.now(UTC)
        for seconds, cpu, memory in ((-30, 30.0, 40.0), (70, 55.0, 45.0)):
            at = now + timedelta(seconds=seconds)
            cloudwatch.put_metric_data(
                Namespace="AWS/ECS",
                MetricData=[
                    {"MetricName": "CPUUtilization", "Dimensions": dims, "Value": cpu, "Timestamp": at},
                    {"MetricName": "MemoryUtilization", "Dimensions": dims, "Value": memory, "Timestamp": at},
                ],
            )
        library = make_library(METRICS_DIR=str(tmp_path / "metrics"))
        library.keywords["start_resource_sampling"]()
        later = time.time() + 150
        monkeypatch.setattr(utilisation, "time", SimpleNamespace(time=lambda: later))
        usage = library.keywords["stop_resource_sampling"]()
    (path,) = (tmp_path / "metrics").glob("utilisation-*.jsonl")
    (window,) = [json.loads(line) for line in path.read_text().splitlines()]
    assert window["source"] == "cloudwatch" and usage["samples"] == 2 and usage["cpuPercent"] == 55.0
    points = window["points"]
    assert [(p["cpuPercent"], p["memoryPercent"]) for p in points] == [(30.0, 40.0), (55.0, 45.0)]
    assert points[0]["t"] < 0 < points[1]["t"]  # the first period began before the window
