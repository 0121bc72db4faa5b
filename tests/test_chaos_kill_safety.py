"""A chaos run killed with SIGKILL in the middle of a chaos test leaves no fault, process or session behind once
the next run has started: shown on real robot runs of the chaos suites, against real private platforms.

Each case starts ``robot`` on a chaos test with a long observation window, waits until the fault ledger shows the
fault applied, SIGKILLs the robot process and checks the fault really is still in place (a killed run cannot clean
up). Then it runs the next chaos suite normally and checks that nothing is left: no ledger entry, no toxic, the
cgroup and clock restored or gone with the platform, the workspace back, no helper or platform process, no session
container. Run with ``-s`` to see the demonstration.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "libraries"))

from PlatformLibrary.faults.ledger import FaultLedger
from PlatformLibrary.targets.embedded import faults as local_faults

from testbed.__main__ import platform_processes

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="process and cgroup faults need Linux")


def robot(tmp: Path, name: str, suite: str, test: str, *variables: str) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "robot",
        "--pythonpath",
        "libraries",
        "--variablefile",
        "resources/profiles/local.py",
        "--variable",
        f"FAULT_LEDGER_DIR:{tmp / 'faults'}",
        "--variable",
        f"CHAOS_STATE_ROOT:{tmp / 'chaos'}",
        "--variable",
        f"METRICS_DIR:{tmp / 'metrics'}",
        *[arg for variable in variables for arg in ("--variable", variable)],
        "--outputdir",
        str(tmp / name),
        "--console",
        "dotted",
        "--test",
        test,
        f"suites/chaos/{suite}.robot",
    ]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    env.pop("TESTBED_DEFECTS", None)
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for_fault(ledger: FaultLedger, kind: str, run: subprocess.Popen, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for entry in ledger.entries():
            if entry["kind"] == kind and entry["state"] == "active":
                return entry
        if run.poll() is not None:
            pytest.fail(f"robot ended before the {kind} fault was applied:\n{run.stdout.read()}")
        time.sleep(0.01)
    run.kill()
    pytest.fail(f"No active {kind} fault in {ledger.file} within {timeout} s")


def kill_robot(run: subprocess.Popen) -> None:
    run.send_signal(signal.SIGKILL)
    run.wait(timeout=10)
    run.stdout.close()
    print(f"robot pid {run.pid} killed with SIGKILL (exit {run.returncode})")


def instance_of(state: Path) -> str:
    return json.loads((state / "run" / "platform.json").read_text())["instance"]


def agents_of(instance: str) -> list[int]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if f"testbed-agent instance={instance} " in " ".join(proc.info.get("cmdline") or []):
            found.append(proc.pid)
    return found


def show(title: str, ledger: FaultLedger) -> None:
    print(f"--- {title}: fault ledger {ledger.file}")
    for entry in ledger.entries():
        owner = entry["owner"]
        print(f"    {entry['kind']:22} {entry['state']:9} owner pid {owner['pid']} ({entry['description']})")
    if not ledger.entries():
        print("    (empty)")


def stop_leftovers(state: Path, instance: str) -> None:
    """Kills (by PID) what a failed test left of the killed run's platform, so no test leaves a process behind."""
    for proc in platform_processes(state, instance):
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    for pid in agents_of(instance):
        with contextlib.suppress(psutil.NoSuchProcess):
            psutil.Process(pid).kill()


def next_run_leaves_nothing(tmp: Path, ledger: FaultLedger, killed_state: Path, killed_instance: str) -> None:
    """The next run (a different chaos suite) reverts what the killed run left and ends with nothing behind."""
    run = robot(tmp, "next-run", "timeout_and_retry", "A Dropped DynamoDB Connection*")
    output, _ = run.communicate(timeout=180)
    print(output.strip().splitlines()[-1] if output.strip() else "")
    assert run.returncode == 0, output
    show("after the next run", ledger)
    assert ledger.entries() == [], "faults left in the ledger"
    leftovers = platform_processes(killed_state, killed_instance)
    assert leftovers == [], f"processes of the killed run's platform: {[p.pid for p in leftovers]}"
    assert platform_processes(tmp / "chaos" / "timeout_and_retry") == []
    assert agents_of(killed_instance) == [], "session containers of the killed run"
    print(f"killed run's platform {killed_instance}: no process, no container, no session left")


def test_sigkill_during_cpu_throttling_then_next_run_leaves_nothing(tmp_path):
    ledger = FaultLedger(tmp_path / "faults")
    run = robot(
        tmp_path,
        "killed-run",
        "resource_constraints",
        "A CPU-Throttled Container*",
        "CHAOS_OBSERVATION_WINDOW:60 s",
    )
    entry = wait_for_fault(ledger, "cpu-throttle", run)
    quota = next(Path(step["path"]) for step in entry["undo"] if step["do"] == "restore-cgroup")
    marker = next(step["marker"] for step in entry["undo"] if step["do"] == "kill-helper")
    state = tmp_path / "chaos" / "resource_constraints"
    instance = instance_of(state)
    throttled = quota.read_text().strip()
    kill_robot(run)
    show("after SIGKILL", ledger)
    assert {e["kind"] for e in ledger.entries()} == {"cpu-throttle", "private-platform"}
    assert quota.read_text().strip() == throttled != entry["undo"][0]["previous"], "the fault should still be there"
    print(f"cgroup {quota} still throttled: {throttled} (was {entry['undo'][0]['previous']})")
    assert platform_processes(state, instance), "the killed run's platform is still running"
    print(f"platform {instance} still running: {len(platform_processes(state, instance))} processes")
    deadline = time.monotonic() + 5
    while local_faults.helper_pids(marker) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert local_faults.helper_pids(marker) == [], "the CPU burner dies with the killed run (PR_SET_PDEATHSIG)"
    print("CPU burner helper: gone with the killed run")
    next_run_leaves_nothing(tmp_path, ledger, state, instance)
    assert not quota.parent.exists(), "the container's cgroup went with the stopped platform"


@pytest.mark.parametrize(
    ("suite", "test", "kind"),
    [
        ("resource_constraints", "When EFS Fails*", "workspace-unavailable"),
        ("time_faults", "A Session Is Stopped For Idleness*", "clock-skew"),
        ("service_mesh_failure", "A Broken Mesh Gives*", "toxic"),
        ("control_plane_unavailability", "Running Sessions Keep Serving*", "control-plane-outage"),
    ],
)
def test_sigkill_in_the_middle_of_a_fault_then_next_run_leaves_nothing(tmp_path, suite, test, kind):
    ledger = FaultLedger(tmp_path / "faults")
    run = robot(tmp_path, "killed-run", suite, test, "CHAOS_OBSERVATION_WINDOW:60 s")
    entry = wait_for_fault(ledger, kind, run)
    state = tmp_path / "chaos" / suite
    instance = instance_of(state)
    try:
        kill_robot(run)
        show("after SIGKILL", ledger)
        step = entry["undo"][0]
        if kind == "workspace-unavailable":
            original, moved = Path(step["original"]), Path(step["moved"])
            assert not original.exists() and moved.is_dir(), "the workspace should still be away"
            print(f"workspace {original} still unavailable (at {moved})")
        elif kind == "clock-skew":
            skew = float(Path(step["path"]).read_text())
            assert skew > 0, "the clock should still be skewed"
            print(f"platform clock still skewed by {skew:+.0f} s")
        elif kind == "control-plane-outage":
            assert Path(step["path"]).read_text().strip() == "Unreachable", "the platform should still be cut off ECS"
            print("container control plane still unreachable")
        else:
            toxics = requests.get(f"{step['proxy']}/proxies/{step['hop']}/toxics", timeout=5).json()
            assert [t["name"] for t in toxics] == [step["toxic"]], "the toxic should still be there"
            print(f"toxic {step['toxic']} still on hop {step['hop']}")
        next_run_leaves_nothing(tmp_path, ledger, state, instance)
        if kind == "workspace-unavailable":
            assert Path(step["original"]).is_dir() and not Path(step["moved"]).exists()
            print(
                f"workspace {step['original']} moved back: {sorted(p.name for p in Path(step['original']).iterdir())}"
            )
        elif kind == "clock-skew":
            assert not Path(step["path"]).exists()
            print("clock-skew file removed")
        elif kind == "control-plane-outage":
            assert not Path(step["path"]).exists()
            print("control-plane file removed")
    finally:
        stop_leftovers(state, instance)


def test_exit_watch_notes_the_moment_a_process_ends_not_when_it_is_seen_gone():
    """The origin of an OOM recovery: the exit's own moment, neither before the kill nor long after it."""
    process = subprocess.Popen(["sleep", "30"])
    try:
        watch = local_faults.ExitWatch(process.pid, lifetime=10)
        assert watch.exited_at is None, "a running process was noted as exited"
        time.sleep(0.2)  # the process lives on: the watch must not fire meanwhile
        assert watch.exited_at is None, "the watch fired while the process still ran"
        killed_at = time.monotonic()
        process.kill()
        exited = watch.wait(5)
        assert exited is not None, f"the watch ({watch.how}) never saw pid {process.pid} exit"
        assert exited >= killed_at, "the exit was noted before the kill"
        # Seen within a second of the kill on any machine (a pidfd wakes at once; polling every 5 ms).
        assert exited - killed_at < 1.0, f"the exit was noted {exited - killed_at:.3f} s after the kill"
    finally:
        process.kill()
        process.wait(5)


def test_exit_watch_of_a_process_already_gone_is_exited():
    process = subprocess.Popen(["true"])
    process.wait(5)
    watch = local_faults.ExitWatch(process.pid, lifetime=1)
    assert watch.wait(1) is not None
