"""Chaos keywords without a platform: the fault ledger, every revert step, helper processes, and the safety guards."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "libraries"))

from PlatformLibrary import PlatformLibrary
from PlatformLibrary.aws.safety import ChaosRefused
from PlatformLibrary.core.endpoints import Endpoints
from PlatformLibrary.core.profile import Profile
from PlatformLibrary.faults.ledger import FaultLedger, FaultRevertError, revert_entries, revert_entry, undo_step
from PlatformLibrary.targets.embedded import faults as local_faults


def make_library(tmp_path: Path, **variables) -> PlatformLibrary:
    library = PlatformLibrary(run_id="unit")
    values = {
        "TARGET": "embedded",
        "PLATFORM_STATE_DIR": str(tmp_path / "state"),
        "FAULT_LEDGER_DIR": str(tmp_path / "faults"),
        "HTTP_TIMEOUT": "2 s",
        "POLL_INTERVAL": "10 ms",
        **variables,
    }
    library.profile = Profile(variables=values)
    library.endpoints = Endpoints(library.profile)
    return library


class Proxy(BaseHTTPRequestHandler):
    """A fault proxy admin API that knows one toxic, ``known`` on hop ``dynamodb``, and records every call."""

    calls: list[tuple[str, str, bytes]] = []

    def _answer(self, status: int, body: dict | None = None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _record(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        Proxy.calls.append((self.command, self.path, self.rfile.read(length) if length else b""))

    def do_DELETE(self):
        self._record()
        self._answer(204 if self.path.endswith("/toxics/known") else 404, None)

    def do_POST(self):
        self._record()
        self._answer(200, {"enabled": True})

    def do_GET(self):
        self._record()
        self._answer(200, {})

    def log_message(self, *args):
        return


@pytest.fixture
def proxy():
    Proxy.calls = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def dead_owner() -> dict:
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return {"pid": int(finished.stdout), "createTime": 1.0}


# ---------------------------------------------------------------------------------------------------- ledger
def test_a_fault_is_written_down_before_it_is_applied_and_crossed_out_when_reverted(tmp_path):
    ledger = FaultLedger(tmp_path)
    target = tmp_path / "clock-skew"
    entry = ledger.record("clock-skew", "skewed", [{"do": "restore-file", "path": str(target), "previous": None}], "r1")
    assert entry["state"] == "injecting" and entry["owner"]["pid"] == os.getpid()
    assert [e["id"] for e in FaultLedger(tmp_path).entries()] == [entry["id"]]
    target.write_text("300")
    ledger.update(entry["id"], state="active")
    assert ledger.mine()[0]["state"] == "active"
    revert_entry(ledger, ledger.get(entry["id"]))
    assert not target.exists()
    assert ledger.entries() == []


def test_parallel_writers_never_lose_an_entry(tmp_path):
    code = (
        "import sys; sys.path.insert(0, sys.argv[2])\n"
        "from PlatformLibrary.faults.ledger import FaultLedger\n"
        "for i in range(20): FaultLedger(sys.argv[1]).record('toxic', f'w{i}', [], 'p')\n"
    )
    libraries = str(Path(__file__).resolve().parents[1] / "libraries")
    writers = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path), libraries]) for _ in range(4)]
    assert [w.wait(timeout=60) for w in writers] == [0, 0, 0, 0]
    assert len(FaultLedger(tmp_path).entries()) == 80


def test_an_earlier_run_is_recognised_by_its_dead_owner_and_a_live_neighbour_is_left_alone(tmp_path):
    ledger = FaultLedger(tmp_path)
    mine = ledger.record("toxic", "mine", [], "r")
    dead = ledger.record("toxic", "dead", [], "r")
    alive = ledger.record("toxic", "neighbour", [], "r")
    neighbour = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        import psutil

        ledger.update(dead["id"], owner=dead_owner())
        started = psutil.Process(neighbour.pid).create_time()
        ledger.update(alive["id"], owner={"pid": neighbour.pid, "createTime": started})
        assert {e["description"] for e in ledger.abandoned()} == {"mine", "dead"}
        assert [e["id"] for e in ledger.mine()] == [mine["id"]]
    finally:
        neighbour.kill()
        neighbour.wait()


# ---------------------------------------------------------------------------------------------------- revert steps
def test_toxic_and_hop_steps_talk_to_the_proxy_and_accept_faults_that_are_already_gone(proxy):
    assert "done" in undo_step({"do": "delete-toxic", "proxy": proxy, "hop": "dynamodb", "toxic": "known"})
    assert "already gone" in undo_step({"do": "delete-toxic", "proxy": proxy, "hop": "dynamodb", "toxic": "other"})
    assert "done" in undo_step({"do": "enable-hop", "proxy": proxy, "hop": "api"})
    assert Proxy.calls[-1] == ("POST", "/proxies/api", b'{"enabled": true}')
    gone = undo_step({"do": "delete-toxic", "proxy": "http://127.0.0.1:9", "hop": "api", "toxic": "t"})
    assert "platform stopped" in gone


def test_a_workspace_is_moved_back_and_a_folder_recreated_meanwhile_is_kept_aside(tmp_path):
    original, moved = tmp_path / "efs" / "c1" / "u1", tmp_path / "away" / "f1"
    original.mkdir(parents=True)
    (original / "report.md").write_text("draft 1")
    local_faults.move_workspace_away(original, moved)
    assert not original.exists()
    original.mkdir()  # something recreated it, empty: removed without loss
    undo_step({"do": "move-back", "original": str(original), "moved": str(moved)})
    assert (original / "report.md").read_text() == "draft 1"
    local_faults.move_workspace_away(original, moved)
    original.mkdir()
    (original / "stray.txt").write_text("written elsewhere")  # recreated with content: kept aside, not merged
    note = undo_step({"do": "move-back", "original": str(original), "moved": str(moved)})
    assert (original / "report.md").read_text() == "draft 1" and "kept at" in note
    assert [p.name for p in original.parent.iterdir() if p.name.startswith("u1.recreated")]


def test_a_cgroup_value_is_written_back_and_a_removed_cgroup_needs_nothing(tmp_path):
    quota = tmp_path / "cpu.cfs_quota_us"
    quota.write_text("10000")
    undo_step({"do": "restore-cgroup", "path": str(quota), "previous": "100000"})
    assert quota.read_text() == "100000"
    assert "gone" in undo_step({"do": "restore-cgroup", "path": str(tmp_path / "gone" / "x"), "previous": "1"})


def test_a_helper_is_killed_by_its_marker_and_dies_with_the_process_that_started_it(tmp_path):
    pid, start, proc = local_faults.start_helper("burn", "m-unit", [], os.getpid(), 30)
    try:
        assert local_faults.helper_pids("m-unit") == [pid]
        assert "killed" in undo_step({"do": "kill-helper", "marker": "m-unit", "pid": pid, "startTime": start})
        proc.wait(timeout=5)
        assert local_faults.helper_pids("m-unit") == []
        assert "already gone" in undo_step({"do": "kill-helper", "marker": "m-unit", "pid": pid, "startTime": start})
    finally:
        proc.kill()
    libraries = Path(__file__).resolve().parents[1] / "libraries"
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import sys, os, time; sys.path.insert(0, {str(libraries)!r})\n"
            "from PlatformLibrary.targets.embedded import faults as lf\n"
            "pid, _, _ = lf.start_helper('burn', 'm-orphan', [], os.getpid(), 60); print(pid, flush=True)\n"
            "time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    helper = int(parent.stdout.readline())
    assert local_faults.helper_pids("m-orphan") == [helper]
    parent.send_signal(signal.SIGKILL)  # a test run killed with SIGKILL takes its helpers along
    parent.wait()
    deadline = time.monotonic() + 5
    while local_faults.helper_pids("m-orphan") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert local_faults.helper_pids("m-orphan") == []


def test_a_failed_step_keeps_the_entry_and_says_why(tmp_path):
    ledger = FaultLedger(tmp_path)
    entry = ledger.record("odd", "odd fault", [{"do": "teleport"}], "r")
    done, problems = revert_entries(ledger, [entry])
    assert done == [] and "Unknown revert step 'teleport'" in problems[0]
    assert ledger.get(entry["id"]) is not None
    with pytest.raises(FaultRevertError, match="not fully reverted"):
        revert_entry(ledger, entry)


def test_cgroup_of_a_process_outside_the_platform_is_refused():
    with pytest.raises(AssertionError, match="is not in a cgroup of platform instance abc"):
        local_faults.container_cgroup("cgroup-v1", "abc", os.getpid())
    with pytest.raises(AssertionError, match="not with cgroups"):
        local_faults.container_cgroup("rlimit", "abc", os.getpid())


# ---------------------------------------------------------------------------------------------------- guards
def test_chaos_is_refused_when_the_profile_does_not_allow_it(tmp_path):
    library = make_library(tmp_path, CHAOS_ALLOWED=False)
    with pytest.raises(ChaosRefused, match=r"CHAOS_ALLOWED\} is false"):
        library.keywords["start_private_chaos_platform"]()
    with pytest.raises(ChaosRefused, match="does not allow chaos"):
        library.keywords["make_session_workspace_unavailable"]("s-1")
    assert FaultLedger(tmp_path / "faults").entries() == []


def test_chaos_touches_only_sessions_this_run_created(tmp_path):
    library = make_library(tmp_path)
    keywords = ("make_session_workspace_unavailable", "break_service_mesh_of_session", "throttle_session_container_cpu")
    for name in keywords:
        with pytest.raises(ChaosRefused, match="was not created by this run"):
            library.keywords[name]("s-not-ours")


def test_a_whole_platform_fault_needs_a_private_platform_or_the_platform_to_itself(tmp_path):
    library = make_library(tmp_path)
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "endpoints.json").write_text(json.dumps({"CLOCK_SKEW_FILE": str(tmp_path / "skew")}))
    for keyword, args in (("skew_platform_clock", (60,)), ("inject_aws_fault", ("throttle",))):
        with pytest.raises(ChaosRefused, match="hits the whole platform"):
            library.keywords[keyword](*args)
    assert not (tmp_path / "skew").exists()


def test_revert_all_faults_undoes_this_process_s_ledger_entries_but_keeps_its_private_platform(tmp_path, proxy):
    library = make_library(tmp_path)
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "endpoints.json").write_text(json.dumps({"FAULT_PROXY_URL": proxy}))
    ledger = FaultLedger(tmp_path / "faults")
    skew = tmp_path / "state" / "clock-skew"
    skew.write_text("300")
    ledger.record("clock-skew", "skew", [{"do": "restore-file", "path": str(skew), "previous": None}], "unit")
    platform = ledger.record("private-platform", "platform", [{"do": "platform-down", "state": "/nowhere"}], "unit")
    library.keywords["revert_all_faults"]()
    assert not skew.exists()
    assert [e["id"] for e in ledger.entries()] == [platform["id"]]
    assert ("POST", "/reset", b"") in Proxy.calls
