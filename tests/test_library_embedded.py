"""Embedded platform lifecycle decisions: use a running platform, and stop only what this suite started."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "libraries"))

from PlatformLibrary import PlatformLibrary
from PlatformLibrary.core.base import TargetError
from PlatformLibrary.core.endpoints import Endpoints, EndpointsError
from PlatformLibrary.core.profile import Profile
from PlatformLibrary.targets.embedded.keywords import MARKER_NAME, _identity_alive, _process_identity


class Health(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "29")
        self.end_headers()
        self.wfile.write(b'{"status": "ok", "store": "ok"}'[:29])

    def log_message(self, *args):
        return


@pytest.fixture
def running_platform():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def testbed_calls(monkeypatch) -> list:
    """Records the commands run instead of running them; each succeeds as ``testbed down`` would."""
    calls: list = []

    def fake_run(command, **kwargs):
        calls.append(command)
        return subprocess.CompletedProcess(command, 0, "testbed down: stopped 3 process(es)", "")

    monkeypatch.setattr(subprocess, "run", fake_run)
    return calls


def make_library(state: Path, **extra) -> PlatformLibrary:
    library = PlatformLibrary(run_id="unit")
    library.profile = Profile(variables={"TARGET": "embedded", "PLATFORM_STATE_DIR": str(state), **extra})
    library.endpoints = Endpoints(library.profile)
    return library


def test_running_platform_is_used_and_left_alone(tmp_path, running_platform, monkeypatch):
    (tmp_path / "endpoints.json").write_text(json.dumps({"PLATFORM_API_URL": running_platform}))
    library = make_library(tmp_path)
    started = []
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: started.append(a))
    library.keywords["ensure_platform_is_running"]()
    library.keywords["stop_embedded_platform_if_started_by_suite"]()
    assert started == []
    assert not (tmp_path / MARKER_NAME).exists()


def test_a_live_platform_slow_to_answer_is_not_restarted(tmp_path):
    """A test holding the shared platform's store down makes /health wait: its process still runs, so another suite's
    setup must use it, not start one (which would stop it under the test). A dead one is started again."""
    (tmp_path / "endpoints.json").write_text(json.dumps({"PLATFORM_API_URL": "http://127.0.0.1:9"}))
    (tmp_path / "run").mkdir()
    platform = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "testbed.platform"])
    try:
        (tmp_path / "run" / "platform.json").write_text(json.dumps({"instance": "i", "pid": platform.pid}))
        embedded = make_library(tmp_path).keywords["ensure_platform_is_running"].__self__
        assert embedded._answers(), "a live platform that does not answer in time was taken for none"
    finally:
        platform.kill()
        platform.wait()
    assert not embedded._answers(), "a dead platform was taken for a live one"


def test_platform_of_another_owner_is_not_stopped(tmp_path, monkeypatch):
    marker = {"owner": "/somewhere/else.robot", "root": _process_identity(os.getpid())}
    (tmp_path / MARKER_NAME).write_text(json.dumps(marker))
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: calls.append(a))
    make_library(tmp_path).keywords["stop_embedded_platform_if_started_by_suite"]()
    assert calls == []
    assert (tmp_path / MARKER_NAME).exists()


def test_platform_started_by_this_suite_is_stopped(tmp_path, testbed_calls):
    marker = {"owner": "", "root": _process_identity(os.getpid())}  # outside Robot the suite source is ""
    (tmp_path / MARKER_NAME).write_text(json.dumps(marker))
    make_library(tmp_path).keywords["stop_embedded_platform_if_started_by_suite"]()
    assert testbed_calls == [[sys.executable, "-m", "testbed", "down", "--state", str(tmp_path.resolve())]]
    assert not (tmp_path / MARKER_NAME).exists()


def test_owner_hands_the_platform_over_to_the_last_suite_using_it(tmp_path, monkeypatch, testbed_calls):
    """``pabot suites/recovery``: the suite that started the platform ends first; the last user stops it."""
    marker = {"owner": "/suites/a.robot", "root": _process_identity(os.getpid())}
    (tmp_path / MARKER_NAME).write_text(json.dumps(marker))
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / "users").mkdir()
        registration = {"suite": "/suites/b.robot", "process": _process_identity(other.pid)}
        (tmp_path / "users" / f"{other.pid}-b.json").write_text(json.dumps(registration))
        library = make_library(tmp_path)
        component = library.keywords["stop_embedded_platform_if_started_by_suite"].__self__
        monkeypatch.setattr(component, "_suite_source", lambda: "/suites/a.robot")
        library.keywords["stop_embedded_platform_if_started_by_suite"]()
        assert testbed_calls == [], "the owner stopped a platform another suite still uses"
        assert json.loads((tmp_path / MARKER_NAME).read_text())["handedOver"] is True
    finally:
        other.kill()
        other.wait()
    monkeypatch.setattr(component, "_suite_source", lambda: "/suites/b.robot")
    library.keywords["stop_embedded_platform_if_started_by_suite"]()
    assert testbed_calls == [[sys.executable, "-m", "testbed", "down", "--state", str(tmp_path.resolve())]]
    assert not (tmp_path / MARKER_NAME).exists()


def test_marker_of_a_finished_run_is_dropped(tmp_path):
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = {"pid": int(finished.stdout), "createTime": 1.0}
    assert not _identity_alive(dead)
    assert _identity_alive(_process_identity(os.getpid()))
    (tmp_path / MARKER_NAME).write_text(json.dumps({"owner": "", "root": dead}))
    library = make_library(tmp_path)
    library.keywords["ensure_platform_is_running"].__self__._drop_stale_marker()
    assert not (tmp_path / MARKER_NAME).exists()


def test_failed_start_reports_the_command_and_its_error(tmp_path, monkeypatch):
    def fake_run(command, **kwargs):
        return subprocess.CompletedProcess(command, 2, "", "testbed up: unknown defect 'nope'")

    monkeypatch.setattr(subprocess, "run", fake_run)
    library = make_library(tmp_path, PLATFORM_START_TIMEOUT="5 s")
    with pytest.raises(RuntimeError, match=r"testbed up --state .* --defect nope' failed with exit code 2:\n.*nope"):
        library.keywords["start_embedded_platform"]("--defect", "nope")


def test_missing_endpoints_file_is_explained(tmp_path):
    with pytest.raises(EndpointsError, match=r"has not written .*endpoints\.json yet"):
        make_library(tmp_path).endpoints.get("PLATFORM_API_URL")


def test_endpoints_are_reread_when_the_platform_restarts(tmp_path):
    library = make_library(tmp_path)
    path = tmp_path / "endpoints.json"
    path.write_text(json.dumps({"PLATFORM_API_URL": "http://127.0.0.1:1111"}))
    assert library.endpoints.get("PLATFORM_API_URL") == "http://127.0.0.1:1111"
    path.write_text(json.dumps({"PLATFORM_API_URL": "http://127.0.0.1:22222"}))
    assert library.endpoints.get("PLATFORM_API_URL") == "http://127.0.0.1:22222"
    with pytest.raises(EndpointsError, match="has no key 'NOPE'"):
        library.endpoints.get("NOPE")


def test_aws_endpoints_come_from_the_profile(tmp_path):
    library = make_library(tmp_path, TARGET="aws", PLATFORM_API_URL="", PROFILE="aws")
    with pytest.raises(EndpointsError, match=r"PLATFORM_API_URL\}: set the environment variable ALB_URL"):
        library.endpoints.get("PLATFORM_API_URL")
    with pytest.raises(TargetError, match="'Start Embedded Platform' works on the embedded platform only"):
        library.run_keyword("start_embedded_platform", ())
