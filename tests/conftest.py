"""Shared fixtures: real embedded platforms, each stopped (and checked stopped) afterwards, and load targets."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests import aws_calls
from tests.platform_helpers import Platform

aws_calls.start_recording()

Factory = Callable[..., Platform]
ROOT = Path(__file__).resolve().parents[1]


def run_bench_target(*args: str) -> Iterator[str]:
    """Runs benchmarks/bench_target.py (keep-alive, fixed answer) on 127.0.0.1; yields its URL, then stops it."""
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "benchmarks" / "bench_target.py"), *args], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        yield f"http://127.0.0.1:{int(proc.stdout.readline().split()[1])}"
    finally:
        proc.terminate()
        proc.wait(5)


@pytest.fixture(scope="module")
def target() -> Iterator[str]:
    """The load target at full speed."""
    yield from run_bench_target()


@pytest.fixture(scope="module")
def stalling_target() -> Iterator[str]:
    """A load target that stops answering for 0.5 s at the end of every 1.5 s."""
    yield from run_bench_target("--stall-every", "1.5", "--stall-for", "0.5")


@pytest.fixture
def platform_factory(tmp_path: Path) -> Iterator[Factory]:
    started: list[Platform] = []

    def make(*defects: str, **settings: object) -> Platform:
        platform = Platform(tmp_path / f"p{len(started)}", tuple(defects), **settings)
        started.append(platform)
        return platform

    yield make
    for platform in started:
        platform.down()
        assert platform.processes() == [], "platform processes left behind"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when the library made an AWS call that docs/aws-iam-policy.json does not allow."""
    missing = aws_calls.not_allowed(aws_calls.LIBRARY_CALLS, aws_calls.policy_actions())
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write("\n")
    if missing:
        if reporter is not None:
            reporter.write_line(
                f"docs/aws-iam-policy.json does not allow these calls the library made under test: {missing}", red=True
            )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    elif reporter is not None and aws_calls.LIBRARY_CALLS:
        reporter.write_line(f"IAM policy: allows all {len(aws_calls.LIBRARY_CALLS)} AWS actions the library called.")
