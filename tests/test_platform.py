"""The embedded platform on real processes: lifecycle, recovery, consistency, expiry, capacity, reaper, idle."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import Factory
from tests.platform_helpers import ROOT, Platform, run_testbed, wait_for


@pytest.fixture
def platform(platform_factory: Factory) -> Platform:
    return platform_factory()


def test_up_and_down_leave_nothing_running(tmp_path: Path) -> None:
    platform = Platform(tmp_path / "state")
    try:
        sid = platform.create()["sessionId"]
        platform.wait_status(sid, "RUNNING")
        pids = [p.pid for p in platform.processes()]
        assert len(pids) >= 4, "platform, moto, fault proxy and a container at least"
    finally:
        platform.down()
    assert all(not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE for pid in pids)
    assert platform.processes() == []
    assert not (tmp_path / "state" / "endpoints.json").exists()
    assert platform.startup_seconds < 10


def test_up_refuses_unknown_defect_and_setting(tmp_path: Path) -> None:
    bad = run_testbed("up", "--state", str(tmp_path), "--defect", "no-such-defect", check=False)
    assert bad.returncode == 2 and "unknown defect 'no-such-defect'" in bad.stderr
    bad = run_testbed("up", "--state", str(tmp_path), "--set", "warm_pool_size=lots", check=False)
    assert bad.returncode == 2 and "needs a int" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_create_validates_input(platform: Platform) -> None:
    dots = ({"userId": "..", "clientId": "c"}, {"userId": "u", "clientId": "."})  # each names another folder
    for body in (
        {},
        {"userId": "u1"},
        {"userId": "../x", "clientId": "c"},
        {"userId": "u", "clientId": "c", "x": 1},
        *dots,
    ):
        response = platform.call("POST", "/sessions", json=body)
        assert response.status_code == 400, body
        assert response.json()["error"] == "invalid_request" and response.json()["message"]
    response = platform.call("POST", "/sessions", data=b"{not json")
    assert response.status_code == 400 and "not valid JSON" in response.json()["message"]


def test_session_lifecycle_and_files(platform: Platform) -> None:
    sid = platform.create("alice", "acme")["sessionId"]
    body = platform.wait_status(sid, "RUNNING")
    assert body["startType"] in ("cold", "warm") and body["startDurationMs"] > 0
    put = platform.call("PUT", f"/sessions/{sid}/files/project/package.json", data=b'{"name": "x"}')
    assert put.status_code == 201 and put.json()["size"] == 13
    assert platform.call("GET", f"/sessions/{sid}/files/project/package.json").content == b'{"name": "x"}'
    assert platform.call("GET", f"/sessions/{sid}/files").json()["files"] == [
        {"path": "project/package.json", "size": 13}
    ]
    escape = platform.call("PUT", f"/sessions/{sid}/files/..%2F..%2Fetc%2Fx", data=b"x")
    assert escape.status_code == 400 and escape.json()["error"] == "invalid_path"
    listed = platform.call("GET", "/sessions", params={"userId": "alice"}).json()["sessions"]
    assert [s["sessionId"] for s in listed] == [sid]
    assert platform.call("DELETE", f"/sessions/{sid}/files/project/package.json").status_code == 204
    assert platform.call("DELETE", f"/sessions/{sid}").status_code == 204
    assert platform.call("GET", f"/sessions/{sid}").status_code == 404
    wait_for(lambda: platform.containers(sid) == [], what="container stopped on delete")
    workspace = Path(platform.endpoints["EFS_ROOT"]) / "acme" / "alice"
    assert workspace.is_dir(), "the workspace (EFS) outlives the session"


def test_crash_restarts_with_workspace_intact(platform: Platform) -> None:
    sid = platform.create()["sessionId"]
    platform.wait_status(sid, "RUNNING")
    assert platform.call("PUT", f"/sessions/{sid}/files/project/package.json", data=b"{}").status_code == 201
    old = platform.container(sid)
    old.send_signal(signal.SIGKILL)  # right after the write answered: it must have been fsynced
    body = platform.wait_status(sid, "RUNNING", restartCount=1)
    assert "SIGKILL" in body["lastFailureReason"]
    new = platform.container(sid)
    assert new.pid != old.pid
    assert platform.call("GET", f"/sessions/{sid}/files/project/package.json").content == b"{}"


def test_kill_during_start_never_leaves_two_containers(platform: Platform) -> None:
    sid = platform.create()["sessionId"]
    platform.wait_status(sid, "RUNNING")
    old = platform.container(sid)
    old.send_signal(signal.SIGKILL)
    # the replacement starts cold: kill it while it initialises, before it reports ready
    starting = wait_for(lambda: [p for p in platform.containers(sid) if p.pid != old.pid], what="replacement")
    assert platform.session(sid)["status"] == "RESTARTING"
    starting[0].send_signal(signal.SIGKILL)
    body = platform.wait_status(sid, "RUNNING", timeout=15)
    assert body["restartCount"] == 2
    assert len(platform.containers(sid)) == 1


def test_conditional_writes_never_lose_an_update(platform: Platform) -> None:
    from testbed.config import Settings
    from testbed.store import SessionStore

    store = SessionStore(platform.endpoints["DYNAMODB_ENDPOINT_URL"], Settings())
    record = {
        "sessionId": "race",
        "userId": "u",
        "status": "RUNNING",
        "restartCount": 0,
        "version": 1,
        "expiresAt": int(time.time()) + 3600,
    }
    store.put_new(record)
    run_race(store, writers=8, increments=5)
    assert store.get("race")["restartCount"] == 40


def run_race(store: object, writers: int, increments: int) -> None:
    def bump() -> None:
        for _ in range(increments):
            store.transition("race", {"RUNNING"}, lambda r: {"restartCount": r["restartCount"] + 1}, attempts=200)

    threads = [threading.Thread(target=bump) for _ in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_ttl_is_treated_as_expiry(platform_factory: Factory) -> None:
    platform = platform_factory(session_ttl=2)
    sid = platform.create()["sessionId"]
    platform.wait_status(sid, "RUNNING")
    response = wait_for(
        lambda: (r := platform.call("GET", f"/sessions/{sid}")).status_code == 410 and [r], what="expiry"
    )[0]
    assert response.json()["error"] == "session_expired"
    files = platform.call("GET", f"/sessions/{sid}/files")
    assert files.status_code == 410
    from testbed.config import Settings
    from testbed.store import SessionStore

    item = SessionStore(platform.endpoints["DYNAMODB_ENDPOINT_URL"], Settings()).get(sid)
    assert item is not None, "DynamoDB still returns the item after its TTL"
    wait_for(lambda: platform.containers(sid) == [], what="the expired session's container to stop")


def test_backpressure_at_capacity(platform_factory: Factory) -> None:
    platform = platform_factory(min_capacity=2, max_capacity=2, max_pending=1, warm_pool_size=0)
    answers = [platform.call("POST", "/sessions", json={"userId": f"u{i}", "clientId": "c"}) for i in range(5)]
    codes = [a.status_code for a in answers]
    assert codes == [201, 201, 429, 429, 429]
    assert answers[2].headers["Retry-After"] == "1"
    assert answers[2].json()["error"] == "capacity_exhausted"
    capacity = platform.call("GET", "/capacity").json()
    assert capacity["max"] == 2 and capacity["desired"] == 2
    assert platform.call("GET", "/health").status_code == 200


def test_autoscaling_adds_capacity_under_demand(platform_factory: Factory) -> None:
    platform = platform_factory(
        min_capacity=2, max_capacity=6, scale_out_step=2, scale_out_delay=0.2, max_pending=6, warm_pool_size=0
    )
    sids = [platform.create(f"u{i}")["sessionId"] for i in range(6)]
    for sid in sids:
        platform.wait_status(sid, "RUNNING", timeout=15)
    capacity = wait_for(
        lambda: (c := platform.call("GET", "/capacity").json())["running"] == 6 and c, what="six running containers"
    )
    assert capacity["capacity"] == 6
    assert [a["kind"] for a in capacity["activities"]] == ["scale-out", "scale-out"]


def spawn_fake_orphan(platform: Platform, session: str) -> subprocess.Popen[bytes]:
    env = {"TESTBED_INSTANCE": platform.endpoints["PLATFORM_INSTANCE"], "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "testbed.agent",
            "--instance",
            platform.endpoints["PLATFORM_INSTANCE"],
            "--session",
            session,
            "--task",
            f"{session}/1",
            "--workspace",
            str(platform.state / "ghost"),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    wait_for(lambda: platform.containers(session), what="fake orphan to appear")
    return proc


def test_reaper_removes_orphans(platform: Platform) -> None:
    orphan = spawn_fake_orphan(platform, "s-ghost")
    try:
        actions = platform.call("POST", "/admin/reaper/run").json()["actions"]
        assert any(a["sessionId"] == "s-ghost" and a["action"] == "stop-orphan-container" for a in actions)
        assert orphan.wait(timeout=5) == -signal.SIGKILL
        logged = platform.call("GET", "/admin/reaper").json()["actions"]
        assert any(a["sessionId"] == "s-ghost" and a["applied"] for a in logged)
    finally:
        orphan.kill()
        orphan.wait()


def test_idle_sessions_shut_down(platform_factory: Factory) -> None:
    platform = platform_factory(idle_timeout=1, reaper_interval=0.2)
    sid = platform.create()["sessionId"]
    platform.wait_status(sid, "RUNNING")
    body = platform.wait_status(sid, "STOPPED", timeout=10)
    assert body["stoppedReason"] == "idle"
    wait_for(lambda: platform.containers(sid) == [], what="idle container to stop")


def test_store_outage_is_a_clean_503(platform: Platform) -> None:
    import requests

    hop = f"{platform.endpoints['FAULT_PROXY_URL']}/proxies/dynamodb"
    assert requests.post(hop, json={"enabled": False}, timeout=5).status_code == 200
    try:
        started = time.monotonic()
        response = platform.call("POST", "/sessions", json={"userId": "u", "clientId": "c"})
        assert response.status_code == 503 and response.json()["error"] == "store_unavailable"
        assert response.headers["Retry-After"]
        assert time.monotonic() - started < 10
    finally:
        requests.post(hop, json={"enabled": True}, timeout=5)
    platform.create()


def test_clock_skew_file_moves_the_platform_clock(platform_factory: Factory) -> None:
    platform = platform_factory(session_ttl=600)
    sid = platform.create()["sessionId"]
    platform.wait_status(sid, "RUNNING")
    Path(platform.endpoints["CLOCK_SKEW_FILE"]).write_text("900")  # 15 minutes ahead: past the TTL
    assert wait_for(lambda: platform.call("GET", f"/sessions/{sid}").status_code == 410, what="skewed expiry")
    Path(platform.endpoints["CLOCK_SKEW_FILE"]).write_text("0")


def test_circuit_breaker_fails_fast_during_store_outage_and_closes_after(platform: Platform) -> None:
    from testbed.faultproxy.client import ToxiproxyClient

    proxies = ToxiproxyClient(platform.endpoints["FAULT_PROXY_URL"])
    proxies.add_toxic("dynamodb", "timeout", stream="upstream", name="outage", attributes={"timeout": 0})
    try:

        def fast_failure() -> dict[str, object] | None:
            began = time.monotonic()
            response = platform.call("POST", "/sessions", json={"userId": "u", "clientId": "c"}, timeout=30)
            took = time.monotonic() - began
            return response.json() if response.status_code == 503 and took < 0.25 else None

        body = wait_for(fast_failure, timeout=30, what="the API to fail fast")
        assert "circuit open" in body["message"]
        assert platform.call("GET", "/health").json()["storeCircuit"] in ("open", "half-open")
    finally:
        proxies.remove_toxic("dynamodb", "outage")
    wait_for(
        lambda: platform.call("POST", "/sessions", json={"userId": "u", "clientId": "c"}).status_code == 201,
        timeout=15,
        interval=0.2,
        what="the circuit to close after recovery",
    )
    assert platform.call("GET", "/health").json()["storeCircuit"] == "closed"


def test_health_is_not_ok_while_the_circuit_is_open(platform_factory: Factory) -> None:
    """A health check remembered from before an outage must not answer ok while API calls fail fast."""
    from testbed.faultproxy.client import ToxiproxyClient

    platform = platform_factory(breaker_cooldown=3.0)
    sid = platform.create()["sessionId"]
    assert platform.call("GET", "/health").status_code == 200  # a fresh, remembered ok
    proxies = ToxiproxyClient(platform.endpoints["FAULT_PROXY_URL"])
    proxies.add_toxic("dynamodb", "aws_fault", stream="upstream", name="outage", attributes={"action": "error503"})
    try:
        for _ in range(3):  # enough failed calls to open the circuit
            assert platform.call("GET", f"/sessions/{sid}").status_code == 503
    finally:
        proxies.remove_toxic("dynamodb", "outage")
    health = platform.call("GET", "/health")  # well within the 0.5 s a check is remembered
    assert health.status_code == 503, health.text
    assert health.json()["storeCircuit"] == "open"
    assert platform.call("GET", f"/sessions/{sid}").status_code == 503  # what health must agree with
    wait_for(lambda: platform.call("GET", "/health").status_code == 200, timeout=10, what="health after cooldown")
    assert platform.call("GET", f"/sessions/{sid}").status_code == 200


def memory_cgroup_of(pid: int) -> Path | None:
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            return Path("/sys/fs/cgroup/memory") / path.lstrip("/")
    return None


HOG = """
import sys, time
with open(sys.argv[1] + '/cgroup.procs', 'w') as procs:
    procs.write('0')
chunks = []
for _ in range(80):
    chunks.append(bytearray(8 * 1024 * 1024))
    time.sleep(0.005)
time.sleep(30)
"""


def test_memory_pressure_kills_the_container_and_the_platform_restarts_it(platform: Platform) -> None:
    if platform.endpoints["CONTAINER_LIMITS"] != "cgroup-v1":
        pytest.skip(f"needs writable cgroup v1 memory limits, have {platform.endpoints['CONTAINER_LIMITS']}")
    sid = platform.create()["sessionId"]
    platform.wait_status(sid, "RUNNING")
    agent = platform.container(sid)
    cgroup = memory_cgroup_of(agent.pid)
    assert cgroup is not None and int((cgroup / "memory.limit_in_bytes").read_text()) == 256 * 1024 * 1024
    # Lowering the hog's OOM score needs CAP_SYS_RESOURCE; raising the container's never does.
    Path(f"/proc/{agent.pid}/oom_score_adj").write_text("1000")
    hog = subprocess.Popen([sys.executable, "-c", HOG, str(cgroup)])
    try:
        body = platform.wait_status(sid, "RUNNING", timeout=20, restartCount=1)
        assert body["lastFailureReason"].startswith("OOMKilled")
    finally:
        hog.kill()
        hog.wait()


def test_health_reports_a_store_outage(platform: Platform) -> None:
    import requests

    hop = f"{platform.endpoints['FAULT_PROXY_URL']}/proxies/dynamodb"
    requests.post(hop, json={"enabled": False}, timeout=5)
    try:
        response = wait_for(lambda: (r := platform.call("GET", "/health")).status_code == 503 and [r], what="503")
        assert response[0].json()["store"] == "unavailable"
    finally:
        requests.post(hop, json={"enabled": True}, timeout=5)
    wait_for(lambda: platform.call("GET", "/health").status_code == 200, what="health to recover")
