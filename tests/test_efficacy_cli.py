"""The efficacy runner's --busy-core and skip listing, without running robot: run_robot is replaced by a canned run.

Why: the hog must never outlive the command (a left-behind busy loop would skew every later measurement on the
machine), and skips must be listed with their reasons, since under --busy-core a measuring test skips by design.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from robot.result import TestSuite as ResultSuite  # aliased: pytest would try to collect TestSuite

import efficacy.__main__ as efficacy
from efficacy.__main__ import RunResult, _Collect

SKIP_MESSAGE = "The machine was too busy to measure: reference round trip p50 0.900 ms over 200 " + "x" * 300


def hogs() -> list[psutil.Process]:
    """The children of this process that run the busy loop."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "while True: pass" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:
            continue
    return found


def canned(seen: list[int], fail: BaseException | None = None) -> Callable[..., RunResult]:
    """A stand-in for run_robot: notes the hogs alive during the 'run', then returns a fixed result (or raises)."""

    def run_robot(
        name: str,
        include: str | None,
        defects: str = "",
        processes: int = 4,
        profile: str = "local",
        cgroup: Path | None = None,
    ) -> RunResult:
        seen.extend(p.pid for p in hogs())
        if fail is not None:
            raise fail
        return RunResult(
            statuses={"Suite.Fast": "PASS", "Suite.Measured": "SKIP", "Suite.Broken": "FAIL"},
            messages={"Suite.Broken": "boom"},
            skips={"Suite.Measured": SKIP_MESSAGE[:200]},
            seconds=1.0,
        )

    return run_robot


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Results go to a temporary folder: the real results/efficacy may belong to a run in progress."""
    monkeypatch.setattr(efficacy, "OUT", tmp_path)
    return tmp_path


def assert_gone(pids: list[int]) -> None:
    assert len(pids) >= 1 and len(set(pids)) == 1, f"expected one hog, saw {pids}"
    assert not psutil.pid_exists(pids[0]), f"hog {pids[0]} outlived the command"
    assert hogs() == []


def test_busy_core_flake_starts_one_hog_and_stops_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], isolated: Path
) -> None:
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    seen: list[int] = []
    monkeypatch.setattr(efficacy, "run_robot", canned(seen))
    code = efficacy.main(["flake", "--runs", "2", "--busy-core"])
    assert code == 1  # Suite.Broken failed: flaky exit code unchanged
    assert len(seen) == 2 and len(set(seen)) == 1  # one hog for the whole run, seen in both runs
    assert_gone(seen)
    assert {p.pid for p in psutil.Process().children(recursive=True)} <= before
    out = capsys.readouterr().out
    assert f"pid {seen[0]}" in out
    report = json.loads((isolated / "flake.json").read_text())
    assert report["busy_core"] is True


def test_skips_are_listed_with_their_messages(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], isolated: Path
) -> None:
    monkeypatch.setattr(efficacy, "run_robot", canned([]))
    assert efficacy.main(["flake", "--runs", "2"]) == 1
    out = capsys.readouterr().out
    assert "- Suite.Measured: SKIP SKIP" in out
    assert SKIP_MESSAGE[:200] in out and SKIP_MESSAGE[:201] not in out
    assert out.rstrip().splitlines()[-1] == ("3 tests, 2 runs: 1 did not pass every time, 1 skipped at least once")
    report = json.loads((isolated / "flake.json").read_text())
    assert report["busy_core"] is False
    assert report["skipped"] == {"Suite.Measured": {"outcomes": ["SKIP", "SKIP"], "messages": [SKIP_MESSAGE[:200]] * 2}}
    assert list(report["flaky"]) == ["Suite.Broken"]


def test_hog_stopped_when_run_robot_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []
    monkeypatch.setattr(efficacy, "run_robot", canned(seen, fail=RuntimeError("pabot exploded")))
    with pytest.raises(RuntimeError, match="pabot exploded"):
        efficacy.main(["flake", "--runs", "1", "--busy-core"])
    assert_gone(seen)


def test_hog_stopped_on_keyboard_interrupt(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []
    monkeypatch.setattr(efficacy, "run_robot", canned(seen, fail=KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        efficacy.main(["flake", "--runs", "1", "--busy-core"])
    assert_gone(seen)


def test_hog_stopped_on_sigterm(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []
    previous = signal.getsignal(signal.SIGTERM)

    def terminated(*args: object, **kwargs: object) -> RunResult:
        seen.extend(p.pid for p in hogs())
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises SystemExit here
        raise AssertionError("SIGTERM did not end the run")

    monkeypatch.setattr(efficacy, "run_robot", terminated)
    with pytest.raises(SystemExit):
        efficacy.main(["flake", "--runs", "1", "--busy-core"])
    assert_gone(seen)
    assert signal.getsignal(signal.SIGTERM) == previous  # the handler is the command's only while it runs


def test_busy_core_matrix(monkeypatch: pytest.MonkeyPatch, isolated: Path) -> None:
    defect = next(iter(efficacy.load_catalogue()))
    seen: list[int] = []
    monkeypatch.setattr(efficacy, "run_robot", canned(seen))
    monkeypatch.setattr(efficacy, "mapped_tests", lambda: {defect: ["Suite.Broken"]})
    assert efficacy.main(["matrix", "--defect", defect, "--busy-core"]) == 1  # Suite.Broken: a false alarm
    assert_gone(seen)
    report = json.loads((isolated / "matrix.json").read_text())
    assert report["busy_core"] is True
    assert report["rows"][0]["skipped"] == 1


def test_collect_keeps_first_line_of_skip_messages() -> None:
    suite = ResultSuite(name="Suite")
    suite.tests.create(name="Measured", status="SKIP", message=SKIP_MESSAGE + "\nsecond line")
    suite.tests.create(name="Broken", status="FAIL", message="boom\ntrace")
    suite.tests.create(name="Fast", status="PASS")
    result = RunResult()
    suite.visit(_Collect(result))
    assert result.statuses == {"Suite.Measured": "SKIP", "Suite.Broken": "FAIL", "Suite.Fast": "PASS"}
    assert result.skips == {"Suite.Measured": SKIP_MESSAGE[:200]}
    assert result.messages == {"Suite.Broken": "boom"}


def test_matrix_on_aws_emulated_tells_aws_skips_from_misses(monkeypatch: pytest.MonkeyPatch, isolated: Path) -> None:
    """On aws-emulated a defect whose scenarios all skip (what AWS cannot do) is not a miss; one that passes is."""
    defects = list(efficacy.load_catalogue())[:3]
    skipped, missed, caught = defects
    tests = {
        skipped: ["Suites.Chaos.Throttling.Forged"],
        missed: ["Suites.Recovery.Crash.Kill"],
        caught: ["Suites.Recovery.Crash.Term"],
    }
    outcomes = {
        skipped: RunResult(statuses={tests[skipped][0]: "SKIP"}, skips={tests[skipped][0]: "Embedded platform only"}),
        missed: RunResult(statuses={tests[missed][0]: "PASS"}),
        caught: RunResult(statuses={tests[caught][0]: "FAIL"}, messages={tests[caught][0]: "did not recover"}),
    }
    profiles: list[str] = []

    def run_robot(name: str, include: str | None, defects: str = "", profile: str = "local", **_: object):
        profiles.append(profile)
        return outcomes.get(defects, RunResult(statuses={t[0]: "PASS" for t in tests.values()}))

    monkeypatch.setattr(efficacy, "run_robot", run_robot)
    monkeypatch.setattr(efficacy, "mapped_tests", lambda: tests)
    argv = ["matrix", "--profile", "aws-emulated", *[arg for d in defects for arg in ("--defect", d)]]
    assert efficacy.main(argv) == 1  # the miss
    assert set(profiles) == {"aws-emulated"}
    report = json.loads((isolated / "matrix-aws-emulated.json").read_text())
    verdicts = {row["defect"]: row["verdict"] for row in report["rows"]}
    assert verdicts == {skipped: "aws-skip", missed: "MISSED", caught: "caught"}
    assert report["problems"] == [f"{missed}: missed by {tests[missed][0]}"]
    assert report["rows"][0]["first_failure"] == "Embedded platform only"


def _can_cap() -> bool:
    try:
        parent, _ = efficacy._cgroup_parent()
    except efficacy.CpuLimitError:
        return False
    return os.access(parent, os.W_OK)


needs_cgroup = pytest.mark.skipif(not _can_cap(), reason="no writable cgroup cpu controller (needs root on Linux)")


@needs_cgroup
def test_cpu_limit_caps_what_the_run_starts_and_is_removed_after(
    monkeypatch: pytest.MonkeyPatch, isolated: Path
) -> None:
    """A child started for a run lands in a cgroup with the quota asked for; the cgroup is gone afterwards."""
    seen: dict[str, object] = {}

    def run_robot(name: str, include: str | None, cgroup: Path | None = None, **_: object) -> RunResult:
        assert cgroup is not None, "the run was not given the capped cgroup"
        child = subprocess.run(
            ["cat", "/proc/self/cgroup"], capture_output=True, text=True, preexec_fn=efficacy._join_cgroup(cgroup)
        )
        seen["cgroup"], seen["membership"] = cgroup, child.stdout
        quota = cgroup / "cpu.cfs_quota_us"
        seen["quota"] = quota.read_text().strip() if quota.exists() else (cgroup / "cpu.max").read_text().split()[0]
        return RunResult(statuses={"Suite.Fast": "PASS"}, seconds=1.0)

    monkeypatch.setattr(efficacy, "run_robot", run_robot)
    assert efficacy.main(["flake", "--runs", "1", "--cpu-limit", "1.2"]) == 0
    group = seen["cgroup"]
    assert isinstance(group, Path)
    assert f"/{group.name}" in str(seen["membership"]), f"the child ran outside {group}: {seen['membership']}"
    assert seen["quota"] == "120000", f"quota {seen['quota']} for 1.2 cores (period 100000)"
    assert not group.exists(), f"{group} outlived the command"
    assert json.loads((isolated / "flake.json").read_text())["cpu_limit"] == 1.2


@needs_cgroup
def test_cpu_limit_left_by_a_killed_command_is_removed_by_the_next() -> None:
    parent, _ = efficacy._cgroup_parent()
    stale = parent / f"{efficacy.CGROUP_PREFIX}999999999"  # no such pid
    stale.mkdir(exist_ok=True)
    try:
        assert stale.name in efficacy._remove_stale_cgroups(parent)
        assert not stale.exists()
    finally:
        efficacy._remove_cgroup(stale)


def test_cpu_limit_of_zero_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert efficacy.main(["flake", "--runs", "1", "--cpu-limit", "0"]) == 2
    assert "--cpu-limit must be above 0 cores" in capsys.readouterr().err


PABOT_STAND_IN = """
import signal, subprocess, sys, time
robot = subprocess.Popen([sys.executable, sys.argv[1], sys.argv[2]], start_new_session=True)  # as pabot does
open(sys.argv[3], "w").write(str(robot.pid))
time.sleep(60)
"""
GRACEFUL_ROBOT = """
import signal, sys, time
def stop(*_):
    open(sys.argv[1], "w").write("teardown ran")
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
time.sleep(60)
"""
STUBBORN_ROBOT = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"


def _robot_pid(path: Path) -> int:
    deadline = time.monotonic() + 10
    while not (path.exists() and path.read_text()):
        assert time.monotonic() < deadline, "the stand-in for pabot never started its robot process"
        time.sleep(0.05)
    return int(path.read_text())


def _gone(pid: int, within: float = 2.0) -> bool:
    """The process has ended (a zombie counts: it runs nothing), allowing a SIGKILL a moment to take effect."""
    deadline = time.monotonic() + within
    while True:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def _pabot(tmp_path: Path, robot_code: str) -> tuple[list[str], Path, Path]:
    """A stand-in for pabot that starts one 'robot' process (a script named robot) in a session of its own."""
    (tmp_path / "bin").mkdir()
    robot = tmp_path / "bin" / "robot"
    robot.write_text(robot_code)
    marker, pid_file = tmp_path / "marker", tmp_path / "robot.pid"
    return [efficacy.PYTHON, "-c", PABOT_STAND_IN, str(robot), str(marker), str(pid_file)], marker, pid_file


def test_a_run_ended_early_stops_its_robot_processes_gracefully(tmp_path: Path) -> None:
    """Killing only pabot (subprocess.run's timeout or a SIGTERM) left its robot processes running, orphaned, each
    in a session of its own: each robot process gets SIGTERM (Robot's graceful stop: teardowns run), pabot SIGINT."""
    command, marker, pid_file = _pabot(tmp_path, GRACEFUL_ROBOT)
    began = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        efficacy.run_pabot(command, env=dict(os.environ), timeout=2, grace=20)
    robot = _robot_pid(pid_file)
    assert marker.read_text() == "teardown ran"
    assert _gone(robot), f"robot process {robot} outlived the run"
    assert time.monotonic() - began < 15, "the run was not stopped at once: it waited for the grace to run out"


def test_a_robot_process_that_ignores_sigterm_is_killed_after_the_grace(tmp_path: Path) -> None:
    command, _, pid_file = _pabot(tmp_path, STUBBORN_ROBOT)
    began = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        efficacy.run_pabot(command, env=dict(os.environ), timeout=2, grace=1)
    robot = _robot_pid(pid_file)
    assert _gone(robot), f"robot process {robot} outlived the grace and the SIGKILL"
    assert time.monotonic() - began >= 3, "the robot process was killed before its grace"


def test_a_run_that_finishes_returns_its_exit_code() -> None:
    command = [efficacy.PYTHON, "-c", "import sys; sys.exit(3)"]
    assert efficacy.run_pabot(command, env=dict(os.environ), timeout=30) == 3
