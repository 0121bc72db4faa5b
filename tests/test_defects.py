"""Each defect switch changes exactly the behaviour it names (the clean behaviour is in test_platform.py)."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from testbed.config import DEFECTS, Settings
from testbed.faultproxy.client import ToxiproxyClient
from testbed.store import SessionStore
from tests.conftest import Factory
from tests.platform_helpers import Platform, wait_for
from tests.test_platform import run_race, spawn_fake_orphan


def running_session(platform: Platform) -> str:
    sid = platform.create()["sessionId"]
    platform.wait_status(sid, "RUNNING")
    return sid


def stays(condition: Callable[[], bool], seconds: float) -> bool:
    """True when ``condition`` holds for the whole window (a bounded observation, polled)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not condition():
            return False
        time.sleep(0.05)
    return True


def test_every_defect_has_a_test() -> None:
    tested = {name.removeprefix("test_").replace("_", "-") for name in globals() if name.startswith("test_")}
    assert set(DEFECTS) <= tested, f"defects without a test: {sorted(set(DEFECTS) - tested)}"


def test_no_restart(platform_factory: Factory) -> None:
    platform = platform_factory("no-restart")
    sid = running_session(platform)
    platform.container(sid).send_signal(signal.SIGKILL)
    body = platform.wait_status(sid, "FAILED")
    assert "SIGKILL" in body["lastFailureReason"]
    assert stays(lambda: platform.containers(sid) == [], 1.0)


def test_stale_status(platform_factory: Factory) -> None:
    platform = platform_factory("stale-status")
    sid = running_session(platform)
    old = platform.container(sid)
    old.send_signal(signal.SIGKILL)
    wait_for(lambda: [p for p in platform.containers(sid) if p.pid != old.pid], what="the replacement")
    body = platform.session(sid)
    assert body["restartCount"] == 0 and body["lastFailureReason"] == ""


def test_workspace_lost_on_restart(platform_factory: Factory) -> None:
    platform = platform_factory("workspace-lost-on-restart")
    sid = running_session(platform)
    platform.call("PUT", f"/sessions/{sid}/files/project/package.json", data=b"{}")
    platform.container(sid).send_signal(signal.SIGKILL)
    platform.wait_status(sid, "RUNNING", restartCount=1)
    assert platform.call("GET", f"/sessions/{sid}/files/project/package.json").status_code == 404


def test_double_start(platform_factory: Factory) -> None:
    platform = platform_factory("double-start", reaper_interval=3600)
    sid = running_session(platform)
    platform.container(sid).send_signal(signal.SIGKILL)
    platform.wait_status(sid, "RUNNING", restartCount=1)
    assert len(wait_for(lambda: len(platform.containers(sid)) == 2 and platform.containers(sid))) == 2


def test_orphan_on_create_failure(platform_factory: Factory) -> None:
    for defect, leaks in ((), False), (("orphan-on-create-failure",), True):
        platform = platform_factory(*defect, warm_pool_size=0, cold_start_delay=0.5, reaper_interval=3600)
        proxies = ToxiproxyClient(platform.endpoints["FAULT_PROXY_URL"])
        sid = platform.create()["sessionId"]
        platform.wait_status(sid, "STARTING")
        proxies.update_proxy("dynamodb", enabled=False)
        try:
            wait_for(lambda sid=sid, platform=platform: platform.containers(sid), what="the container to start")
            gone = stays(lambda sid=sid, platform=platform: platform.containers(sid) != [], 3.0)
        finally:
            proxies.update_proxy("dynamodb", enabled=True)
        assert gone is leaks, f"defect={defect}: container still there after the failed create: {gone}"


def test_no_reaper(platform_factory: Factory) -> None:
    platform = platform_factory("no-reaper")
    orphan = spawn_fake_orphan(platform, "s-ghost")
    try:
        actions = platform.call("POST", "/admin/reaper/run").json()["actions"]
        assert [a["applied"] for a in actions if a["sessionId"] == "s-ghost"] == [False]
        assert orphan.poll() is None, "the orphan must survive a disabled reaper"
    finally:
        orphan.kill()
        orphan.wait()


def test_reaper_forgets(platform_factory: Factory) -> None:
    for defect, recorded in ((), True), (("reaper-forgets",), False):
        platform = platform_factory(*defect)
        orphan = spawn_fake_orphan(platform, "s-ghost")
        try:
            actions = platform.call("POST", "/admin/reaper/run").json()["actions"]
            assert [a["action"] for a in actions if a["sessionId"] == "s-ghost"] == ["stop-orphan-container"]
            history = platform.call("GET", "/admin/reaper").json()["actions"]
            assert any(a.get("sessionId") == "s-ghost" for a in history) is recorded, f"defect={defect}"
        finally:
            orphan.kill()
            orphan.wait()


def test_container_timeout_retried(platform_factory: Factory) -> None:
    """Behind a black-holed mesh the API gives up after one container timeout; the defect waits for two."""
    timeout = 2.0
    for defect in ((), ("container-timeout-retried",)):
        platform = platform_factory(*defect, container_call_timeout=timeout)
        sid = platform.create()["sessionId"]
        platform.wait_status(sid, "RUNNING")
        proxies = ToxiproxyClient(platform.endpoints["FAULT_PROXY_URL"])
        proxies.add_toxic(f"mesh-{sid}", "timeout", stream="upstream", name="hole", attributes={"timeout": 0})
        began = time.monotonic()
        response = platform.call("GET", f"/sessions/{sid}/files", timeout=15)
        took = time.monotonic() - began
        assert response.status_code == 503 and response.json()["error"] == "container_unavailable", response.text
        if defect:
            assert took >= 2 * timeout, f"the defect waits for two timeouts, took {took:.2f} s"
        else:
            assert timeout <= took < 2 * timeout - 0.5, f"one timeout expected, took {took:.2f} s"


def test_mesh_hop_leak(platform_factory: Factory) -> None:
    for defect, kept in ((), False), (("mesh-hop-leak",), True):
        platform = platform_factory(*defect)
        sid = platform.create()["sessionId"]
        platform.wait_status(sid, "RUNNING")
        proxies = ToxiproxyClient(platform.endpoints["FAULT_PROXY_URL"])
        assert f"mesh-{sid}" in proxies.proxies()
        assert platform.call("DELETE", f"/sessions/{sid}").status_code == 204
        if kept:
            time.sleep(0.5)  # a leak cannot be waited for: give a working platform ample time, then look
            assert f"mesh-{sid}" in proxies.proxies(), "the defect keeps the hop"
        else:
            wait_for(lambda s=sid, c=proxies: f"mesh-{s}" not in c.proxies(), timeout=5, what="the hop to go")


def test_metrics_in_request_path(platform_factory: Factory) -> None:
    """With CloudWatch a black hole, a create still succeeds; the defect makes it wait for CloudWatch and fail."""
    for defect, expected in ((), 201), (("metrics-in-request-path",), 500):
        platform = platform_factory(*defect)
        proxies = ToxiproxyClient(platform.endpoints["FAULT_PROXY_URL"])
        proxies.add_toxic("cloudwatch", "timeout", stream="upstream", name="hole", attributes={"timeout": 0})
        response = platform.call("POST", "/sessions", json={"userId": "u", "clientId": "c"}, timeout=15)
        assert response.status_code == expected, f"defect={defect}: {response.text}"


def test_keep_refused_creates(platform_factory: Factory) -> None:
    """A create answered 503 whose write landed (its answer lost) is removed by the reaper, unless the defect."""
    for defect, left in ((), 0), (("keep-refused-creates",), 1):
        platform = platform_factory(*defect)
        proxies = ToxiproxyClient(platform.endpoints["FAULT_PROXY_URL"])
        proxies.add_toxic("dynamodb", "timeout", stream="downstream", name="answers-vanish", attributes={"timeout": 0})
        response = platform.call("POST", "/sessions", json={"userId": "refused", "clientId": "c"})
        assert response.status_code == 503, response.text
        proxies.remove_toxic("dynamodb", "answers-vanish")
        wait_for(lambda p=platform: p.call("GET", "/health").status_code == 200, timeout=15)
        platform.call("POST", "/admin/reaper/run")
        sessions = platform.call("GET", "/sessions", params={"userId": "refused"}).json()["sessions"]
        assert len(sessions) == left, f"defect={defect}: {sessions}"


def test_no_throttle_retry(platform_factory: Factory) -> None:
    for defect, expected in ((), 201), (("no-throttle-retry",), 503):
        platform = platform_factory(*defect)
        proxies = ToxiproxyClient(platform.endpoints["FAULT_PROXY_URL"])
        proxies.add_toxic(
            "dynamodb",
            "aws_fault",
            stream="upstream",
            name="throttle",
            attributes={"target": "DynamoDB_20120810.PutItem", "action": "throttle", "count": 1},
        )
        response = platform.call("POST", "/sessions", json={"userId": "u", "clientId": "c"})
        assert response.status_code == expected, f"defect={defect}: {response.text}"


def test_no_backpressure(platform_factory: Factory) -> None:
    platform = platform_factory("no-backpressure", min_capacity=2, max_capacity=2, max_pending=1, warm_pool_size=0)
    codes = [
        platform.call("POST", "/sessions", json={"userId": f"u{i}", "clientId": "c"}).status_code for i in range(5)
    ]
    assert codes == [201] * 5


def test_capacity_refuses_early(platform_factory: Factory) -> None:
    platform = platform_factory(
        "capacity-refuses-early", min_capacity=4, max_capacity=4, max_pending=4, warm_pool_size=0
    )
    codes = [
        platform.call("POST", "/sessions", json={"userId": f"u{i}", "clientId": "c"}).status_code for i in range(4)
    ]
    assert codes == [201, 201, 429, 429]


def test_serve_expired(platform_factory: Factory) -> None:
    platform = platform_factory("serve-expired", session_ttl=1)
    sid = running_session(platform)
    time.sleep(1.5)  # let the TTL pass: the point of the test is that it has
    assert platform.call("GET", f"/sessions/{sid}").status_code == 200


def test_no_idle_shutdown(platform_factory: Factory) -> None:
    platform = platform_factory("no-idle-shutdown", idle_timeout=0.5, reaper_interval=0.1)
    sid = running_session(platform)
    assert stays(lambda: platform.session(sid)["status"] == "RUNNING", 2.0)


def test_lost_update(platform_factory: Factory) -> None:
    platform = platform_factory()
    settings = Settings(defects=["lost-update"])
    store = SessionStore(platform.endpoints["DYNAMODB_ENDPOINT_URL"], settings)
    store.put_new(
        {
            "sessionId": "race",
            "userId": "u",
            "status": "RUNNING",
            "restartCount": 0,
            "version": 1,
            "expiresAt": int(time.time()) + 3600,
        }
    )
    run_race(store, writers=8, increments=5)
    assert store.get("race")["restartCount"] < 40


def test_slow_start(platform_factory: Factory) -> None:
    platform = platform_factory("slow-start", warm_pool_size=0, cold_start_delay=0.2)
    sid = platform.create()["sessionId"]
    body = platform.wait_status(sid, "RUNNING", timeout=15)
    assert body["startType"] == "cold" and body["startDurationMs"] >= 2000


def test_unsafe_paths(platform_factory: Factory) -> None:
    platform = platform_factory("unsafe-paths")
    sid = running_session(platform)
    response = platform.call("PUT", f"/sessions/{sid}/files/..%2Fescaped.txt", data=b"x")
    assert response.status_code == 201
    assert (Path(platform.session(sid)["workspace"]).parent / "escaped.txt").exists()


def test_clean_platform_refuses_escape(platform_factory: Factory) -> None:
    platform = platform_factory()
    sid = running_session(platform)
    assert platform.call("PUT", f"/sessions/{sid}/files/..%2Fescaped.txt", data=b"x").status_code == 400
    assert requests.get(f"{platform.url}/health", timeout=5).status_code == 200


def test_no_circuit_breaker(platform_factory: Factory) -> None:
    platform = platform_factory("no-circuit-breaker", reaper_interval=3600)
    proxies = ToxiproxyClient(platform.endpoints["FAULT_PROXY_URL"])
    proxies.add_toxic("dynamodb", "timeout", stream="upstream", name="outage", attributes={"timeout": 0})
    try:
        for _ in range(4):
            began = time.monotonic()
            response = platform.call("POST", "/sessions", json={"userId": "u", "clientId": "c"}, timeout=30)
            assert response.status_code == 503
            assert time.monotonic() - began > 1.0, "without a breaker every call waits out its timeouts"
    finally:
        proxies.remove_toxic("dynamodb", "outage")


def test_store_no_timeout(platform_factory: Factory) -> None:
    """A DynamoDB call into a black hole waits out the client's read timeout: 1 s a try on the clean platform (a clean
    503 after its three tries and botocore's backoff, within the local profile's 8 s CHAOS_STORE_ANSWER_MAX),
    botocore's default 60 s with the defect (the request hangs until the load balancer gives up at 10 s)."""
    for defect in ((), ("store-no-timeout",)):
        platform = platform_factory(*defect, reaper_interval=3600)
        proxies = ToxiproxyClient(platform.endpoints["FAULT_PROXY_URL"])
        proxies.add_toxic("dynamodb", "timeout", stream="upstream", name="outage", attributes={"timeout": 0})
        try:
            if defect:
                with pytest.raises(requests.Timeout):
                    platform.call("POST", "/sessions", json={"userId": "u", "clientId": "c"}, timeout=8)
            else:
                response = platform.call("POST", "/sessions", json={"userId": "u", "clientId": "c"}, timeout=8)
                assert response.status_code == 503, response.text
        finally:
            proxies.remove_toxic("dynamodb", "outage")


def test_health_lies(platform_factory: Factory) -> None:
    platform = platform_factory("health-lies")
    ToxiproxyClient(platform.endpoints["FAULT_PROXY_URL"]).update_proxy("dynamodb", enabled=False)
    assert stays(lambda: platform.call("GET", "/health").status_code == 200, 1.5)


def test_no_memory_limit(platform_factory: Factory) -> None:
    from tests.test_platform import memory_cgroup_of

    platform = platform_factory("no-memory-limit")
    if platform.endpoints["CONTAINER_LIMITS"] != "cgroup-v1":
        pytest.skip("needs cgroup v1")
    sid = running_session(platform)
    cgroup = memory_cgroup_of(platform.container(sid).pid)
    assert cgroup is not None and int((cgroup / "memory.limit_in_bytes").read_text()) > 2**40


def test_no_scale_out(platform_factory: Factory) -> None:
    platform = platform_factory("no-scale-out", min_capacity=2, max_capacity=6, scale_out_delay=0.2, warm_pool_size=0)
    for i in range(4):
        platform.create(f"u{i}")
    assert stays(lambda: platform.call("GET", "/capacity").json()["capacity"] == 2, 1.5)


def test_efs_silent_fallback(platform_factory: Factory) -> None:
    for defect, expected in ((), 503), (("efs-silent-fallback",), 201):
        platform = platform_factory(*defect)
        sid = running_session(platform)
        workspace = Path(platform.session(sid)["workspace"])
        moved = workspace.with_name(workspace.name + ".unmounted")
        workspace.rename(moved)
        try:
            response = platform.call("PUT", f"/sessions/{sid}/files/notes.txt", data=b"x")
            assert response.status_code == expected, f"defect={defect}: {response.text}"
        finally:
            moved.rename(workspace)


def api_tier(platform: Platform) -> dict:
    return json.loads(Path(platform.endpoints["API_TIER_FILE"]).read_text())


def lb_targets(platform: Platform) -> list[dict]:
    return requests.get(f"{platform.endpoints['LOAD_BALANCER_ADMIN_URL']}/targets", timeout=5).json()["targets"]


def test_lb_no_health_check(platform_factory: Factory) -> None:
    """A frozen target leaves rotation: every read answers once it is unhealthy, unless the defect keeps it."""
    for defect, lost in ((), 0), (("lb-no-health-check",), 3):
        platform = platform_factory(*defect)
        sid = running_session(platform)
        wait_for(lambda p=platform: all(t["state"] == "healthy" for t in lb_targets(p)), what="targets healthy")
        frozen = api_tier(platform)["targets"][0]
        os.kill(frozen["pid"], signal.SIGSTOP)
        try:
            wait_for(
                lambda p=platform, f=frozen: (
                    next(t for t in lb_targets(p) if t["id"] == f["id"])["state"] == "unhealthy"
                ),
                timeout=5,
                what="the frozen target unhealthy",
            )
            failed = 0
            for _ in range(6):
                try:
                    platform.call("GET", f"/sessions/{sid}", timeout=0.5).raise_for_status()
                except requests.RequestException:
                    failed += 1
            assert failed == lost, f"defect={defect}: {failed} of 6 reads failed"
        finally:
            os.kill(frozen["pid"], signal.SIGCONT)


def test_api_target_not_replaced(platform_factory: Factory) -> None:
    for defect, replaced in ((), True), (("api-target-not-replaced",), False):
        platform = platform_factory(*defect)
        killed = api_tier(platform)["targets"][0]
        os.kill(killed["pid"], signal.SIGKILL)
        if replaced:
            wait_for(
                lambda p=platform, k=killed: (
                    k["id"] not in {t["id"] for t in lb_targets(p)}
                    and sum(t["state"] == "healthy" for t in lb_targets(p)) == 2
                ),
                timeout=5,
                what="a healthy replacement",
            )
            assert api_tier(platform)["replaced"][0]["old"] == killed["id"]
        else:
            wait_for(
                lambda p=platform, k=killed: (
                    next(t for t in lb_targets(p) if t["id"] == k["id"])["state"] == "unhealthy"
                ),
                timeout=5,
                what="the dead target unhealthy",
            )
            assert stays(lambda p=platform: sum(t["state"] == "healthy" for t in lb_targets(p)) == 1, 1.5)


def test_lb_not_restarted(platform_factory: Factory) -> None:
    for defect, back in ((), True), (("lb-not-restarted",), False):
        platform = platform_factory(*defect)
        os.kill(api_tier(platform)["loadBalancer"]["pid"], signal.SIGKILL)

        def answers(p: Platform = platform) -> bool:
            try:
                return p.call("GET", "/health", timeout=0.5).status_code == 200
            except requests.RequestException:
                return False

        if back:
            wait_for(answers, timeout=5, what="the API back behind a new load balancer")
        else:
            time.sleep(0.5)  # a missing restart cannot be waited for: let the API fail for a moment first
            assert stays(lambda: not answers(), 1.5)


def test_billed_after_delete(platform_factory: Factory) -> None:
    """A deleted session's container stops; the defect leaves it running (the reaper too) until the platform stops."""
    for defect, kept in ((), False), (("billed-after-delete",), True):
        platform = platform_factory(*defect)
        sid = running_session(platform)
        proc = platform.container(sid)
        assert platform.call("DELETE", f"/sessions/{sid}").status_code == 204
        assert platform.call("GET", f"/sessions/{sid}").status_code == 404
        if kept:
            platform.call("POST", "/admin/reaper/run")
            # A leak cannot be waited for: give a working platform ample time, then look.
            assert stays(lambda p=proc: p.is_running() and p.status() != "zombie", 1.0), "the defect keeps it running"
            assert platform.containers(sid) == [proc], "it is still the deleted session's container"
        else:
            wait_for(lambda p=proc: not p.is_running() or p.status() == "zombie", timeout=5, what="its stop")


def test_control_plane_outage_strands_pending(platform_factory: Factory) -> None:
    for defect, starts in ((), True), (("control-plane-outage-strands-pending",), False):
        platform = platform_factory(*defect, warm_pool_size=0)
        plane = Path(platform.endpoints["CONTROL_PLANE_FILE"])
        plane.write_text("ServiceUnavailable")
        sid = platform.create()["sessionId"]

        def pending(p: Platform = platform, s: str = sid) -> bool:
            return p.session(s)["status"] == "PENDING"

        assert stays(pending, 0.5)  # RunTask refused
        plane.unlink()
        if starts:
            platform.wait_status(sid, "RUNNING")
        else:
            assert stays(pending, 2.5), f"defect={defect}"


def test_outage_exhausts_restarts(platform_factory: Factory) -> None:
    platform = platform_factory("outage-exhausts-restarts")
    sid = running_session(platform)
    plane = Path(platform.endpoints["CONTROL_PLANE_FILE"])
    plane.write_text("ServiceUnavailable")
    platform.container(sid).send_signal(signal.SIGKILL)
    body = platform.wait_status(sid, "FAILED", timeout=8)  # five refused restarts back off for about 3 s
    assert body["stoppedReason"] == "restart policy exhausted"
    assert "container control plane unavailable" in body["lastFailureReason"]
    plane.unlink()


def test_endless_restarts(platform_factory: Factory) -> None:
    """Past restart_max crashes in the window the session is FAILED, unless the defect restarts it again."""
    for defect, final in ((), "FAILED"), (("endless-restarts",), "RUNNING"):
        platform = platform_factory(*defect, restart_max=1, restart_backoff_base=0.05)
        sid = running_session(platform)
        for crash in (1, 2):
            platform.container(sid).kill()
            if crash == 1:
                platform.wait_status(sid, "RUNNING", restartCount=1)
        platform.wait_status(sid, final, **({"restartCount": 2} if final == "RUNNING" else {}))


def test_workspace_deleted_with_session(platform_factory: Factory) -> None:
    for defect, kept in ((), True), (("workspace-deleted-with-session",), False):
        platform = platform_factory(*defect)
        sid = running_session(platform)
        assert platform.call("PUT", f"/sessions/{sid}/files/keep.txt", data=b"x").status_code == 201
        workspace = Path(platform.session(sid)["workspace"])
        assert platform.call("DELETE", f"/sessions/{sid}").status_code == 204
        assert (workspace / "keep.txt").exists() is kept


def test_shared_workspace(platform_factory: Factory) -> None:
    for defect, shared in ((), False), (("shared-workspace",), True):
        platform = platform_factory(*defect)
        first = platform.create("alice", "acme")["workspace"]
        second = platform.create("bob", "acme")["workspace"]
        assert (first == second) is shared


def test_expired_record_left_running(platform_factory: Factory) -> None:
    """A reaper pass past the TTL closes the record (STOPPED, expired), unless the defect leaves it RUNNING."""
    for defect, status in ((), "STOPPED"), (("expired-record-left-running",), "RUNNING"):
        platform = platform_factory(*defect, session_ttl=4.0)
        sid = running_session(platform)
        store = SessionStore(platform.endpoints["DYNAMODB_ENDPOINT_URL"], Settings())
        wait_for(
            lambda p=platform, s=sid: not p.containers(s), timeout=10, what="the expired session's container to stop"
        )
        platform.call("POST", "/admin/reaper/run")
        record = store.get(sid)
        assert record is not None and record["status"] == status, f"defect={defect}: {record}"


def test_scale_in_below_load(platform_factory: Factory) -> None:
    """A scale-in never takes capacity below the sessions it serves, unless the defect cuts two steps blindly."""
    for defect, lowest in ((), 4), (("scale-in-below-load",), 2):
        platform = platform_factory(
            *defect, min_capacity=2, max_capacity=8, scale_out_step=2, scale_in_delay=0.3, warm_pool_size=0
        )
        sids = [platform.create(f"u{i}")["sessionId"] for i in range(6)]
        for sid in sids:
            platform.wait_status(sid, "RUNNING")
        for sid in sids[3:]:
            assert platform.call("DELETE", f"/sessions/{sid}").status_code == 204
        seen = wait_for(
            lambda p=platform: (
                [a for a in p.call("GET", "/capacity").json()["activities"] if a["kind"] == "scale-in"] or None
            ),
            what="a scale-in",
        )
        assert seen[0]["to"] == lowest, f"defect={defect}: {seen}"


def test_idle_from_container_clock(platform_factory: Factory) -> None:
    """Containers hours ahead of the platform stop nothing, unless the defect judges idleness on their clock."""
    for defect, status in ((), "RUNNING"), (("idle-from-container-clock",), "STOPPED"):
        platform = platform_factory(*defect, idle_timeout=600, reaper_interval=3600)
        sid = running_session(platform)
        Path(platform.endpoints["CONTAINER_CLOCK_SKEW_FILE"]).write_text("7200\n")
        platform.call("POST", "/admin/reaper/run")
        assert platform.session(sid)["status"] == status, f"defect={defect}"


def test_idle_from_skewed_clock(platform_factory: Factory) -> None:
    """A session used just after the platform clock ran 5 min ahead (idle timeout 4 min) stays live, unless the
    defect judges idleness on the skewed clock against activity stamped on the host's."""
    for defect, status in ((), "RUNNING"), (("idle-from-skewed-clock",), "STOPPED"):
        platform = platform_factory(*defect, idle_timeout=240, reaper_interval=3600)
        sid = running_session(platform)
        Path(platform.endpoints["CLOCK_SKEW_FILE"]).write_text("300\n")
        assert platform.call("GET", f"/sessions/{sid}/files").status_code == 200  # used under the skew
        platform.call("POST", "/admin/reaper/run")
        assert platform.session(sid)["status"] == status, f"defect={defect}"


def test_ended_session_retryable(platform_factory: Factory) -> None:
    """A file call to a FAILED session is 409 session_not_running, unless the defect says 503 retry later."""
    for defect, expected in ((), 409), (("ended-session-retryable",), 503):
        platform = platform_factory(*defect, restart_max=0)
        sid = running_session(platform)
        platform.container(sid).kill()
        platform.wait_status(sid, "FAILED")
        assert platform.call("PUT", f"/sessions/{sid}/files/x.txt", data=b"x").status_code == expected


def test_unchecked_ids(platform_factory: Factory) -> None:
    for defect, expected in ((), 400), (("unchecked-ids",), 201):
        platform = platform_factory(*defect)
        response = platform.call("POST", "/sessions", json={"userId": "bad id", "clientId": "qa"})
        assert response.status_code == expected, f"defect={defect}: {response.text}"


def test_overload_as_outage() -> None:
    """A store call refused for want of a slot is 429 overloaded, unless the defect calls it an outage (503)."""
    from testbed.service import store_error
    from testbed.store import StoreOverloaded

    for defect, status in ((), 429), (("overload-as-outage",), 503):
        answer = store_error(StoreOverloaded("all 8 slots busy"), Settings(defects=list(defect)))
        assert answer.status == status, f"defect={defect}"


def test_overwrite_keeps_tail(platform_factory: Factory) -> None:
    """A shorter overwrite replaces the whole file, unless the defect writes over the old one without truncating."""
    for defect, expected in ((), b"new"), (("overwrite-keeps-tail",), b"new content that is long"):
        platform = platform_factory(*defect)
        sid = running_session(platform)
        for data in (b"old content that is long", b"new"):
            assert platform.call("PUT", f"/sessions/{sid}/files/f.txt", data=data).status_code == 201
        assert platform.call("GET", f"/sessions/{sid}/files/f.txt").content == expected, f"defect={defect}"


def test_stale_read_cache(platform_factory: Factory) -> None:
    """A read after an overwrite serves the new version, unless the defect serves the first version it read."""
    for defect, expected in ((), b"second"), (("stale-read-cache",), b"first"):
        platform = platform_factory(*defect)
        sid = running_session(platform)
        assert platform.call("PUT", f"/sessions/{sid}/files/f.txt", data=b"first").status_code == 201
        assert platform.call("GET", f"/sessions/{sid}/files/f.txt").content == b"first"
        assert platform.call("PUT", f"/sessions/{sid}/files/f.txt", data=b"second").status_code == 201
        assert platform.call("GET", f"/sessions/{sid}/files/f.txt").content == expected, f"defect={defect}"


def test_binary_mangled(platform_factory: Factory) -> None:
    """Every byte value is stored as sent, unless the defect passes the content through text decoding."""
    data = bytes(range(256))
    for defect, intact in ((), True), (("binary-mangled",), False):
        platform = platform_factory(*defect)
        sid = running_session(platform)
        assert platform.call("PUT", f"/sessions/{sid}/files/b.bin", data=data).status_code == 201
        assert (platform.call("GET", f"/sessions/{sid}/files/b.bin").content == data) is intact, f"defect={defect}"


def test_path_escapes_to_client_folder(platform_factory: Factory) -> None:
    """'../<otherUser>/f' is refused, unless the defect fences paths at the client folder; '../../' stays refused."""
    for defect, neighbour in ((), 400), (("path-escapes-to-client-folder",), 200):
        platform = platform_factory(*defect)
        alice, bob = running_session(platform), platform.create("bob", "c1")["sessionId"]
        platform.wait_status(bob, "RUNNING")
        assert platform.call("PUT", f"/sessions/{alice}/files/secret.txt", data=b"alice's").status_code == 201
        stolen = platform.call("GET", f"/sessions/{bob}/files/%2E%2E/u1/secret.txt")
        assert stolen.status_code == neighbour, f"defect={defect}: {stolen.text}"
        escape = platform.call("PUT", f"/sessions/{bob}/files/%2E%2E/%2E%2E/escaped.txt", data=b"x")
        assert escape.status_code == 400, f"defect={defect}: {escape.text}"


def test_lenient_create_body(platform_factory: Factory) -> None:
    """A numeric userId or a body sent as text/plain is 400, unless the defect coerces and creates a session."""
    for defect, expected in ((), 400), (("lenient-create-body",), 201):
        platform = platform_factory(*defect)
        numeric = platform.call("POST", "/sessions", json={"userId": 12345, "clientId": "c1"})
        assert numeric.status_code == expected, f"defect={defect}: {numeric.text}"
        plain = platform.call(
            "POST", "/sessions", data=b'{"userId": "u2", "clientId": "c1"}', headers={"Content-Type": "text/plain"}
        )
        assert plain.status_code == expected, f"defect={defect}: {plain.text}"


def test_clean_platform_refuses_ids_with_a_final_newline_and_absolute_paths(platform_factory: Factory) -> None:
    """Found by the bad-request and cross-user scenarios: "u1\\n" passed the id pattern ('$' matches before a final
    newline), and a path beginning with '/' was made relative by the API instead of refused."""
    platform = platform_factory()
    response = platform.call("POST", "/sessions", json={"userId": "u1\n", "clientId": "c1"})
    assert response.status_code == 400, response.text
    sid = running_session(platform)
    assert platform.call("PUT", f"/sessions/{sid}/files//etc/escaped.txt", data=b"x").status_code == 400
    assert platform.call("PUT", f"/sessions/{sid}/files/%2Fetc%2Fescaped.txt", data=b"x").status_code == 400


def _runnable_share(platform: Platform, sid: str, samples: int = 40) -> float:
    """The share of samples in which some thread of the container is runnable (state R in /proc/<pid>/task/*/stat).

    A spinning thread is runnable whether or not a busy machine gives it a core; an idle agent's threads sleep. So
    this tells spinning from idle on any machine, where CPU seconds over a window depend on the machine's load.
    """
    pid = platform.container(sid).pid
    runnable = 0
    for _ in range(samples):
        states = []
        for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
            try:
                states.append(stat.read_text().rsplit(")", 1)[1].split()[0])
            except (OSError, IndexError):
                continue
        runnable += "R" in states
        time.sleep(0.025)  # spacing between samples, not a wait for a condition
    return runnable / samples


def test_scale_out_busy_wait(platform_factory: Factory) -> None:
    """An idle new container's threads sleep, unless the defect makes one spin for its first seconds: how often some
    thread of the container is runnable, with and without the defect (robust to a busy machine, unlike CPU seconds)."""
    share = {}
    for defect in ((), ("scale-out-busy-wait",)):
        platform = platform_factory(*defect)
        share[defect] = _runnable_share(platform, running_session(platform))
    assert share[()] < 0.3, f"an idle healthy container had a runnable thread in {share[()]:.0%} of the samples"
    spinning = share[("scale-out-busy-wait",)]
    assert spinning > 0.8, f"the spinning container had a runnable thread in only {spinning:.0%} of the samples"


def test_workspace_io_blocked_while_starting(platform_factory: Factory) -> None:
    """A file operation does not wait for another session's start, unless the defect locks the file system while a
    container starts: the file call is timed while a second session's cold start runs, with and without it."""
    waited = {}
    for defect in ((), ("workspace-io-blocked-while-starting",)):
        platform = platform_factory(*defect, cold_start_delay=2.0, warm_pool_size=0)
        sid = running_session(platform)
        other = platform.create("starter")["sessionId"]
        platform.wait_status(other, "STARTING")  # its start has begun: with the defect, it holds the lock now
        began = time.monotonic()
        assert platform.call("PUT", f"/sessions/{sid}/files/f.txt", data=b"x").status_code == 201
        waited[defect] = time.monotonic() - began
    assert waited[()] < 1.0, f"a healthy file call waited {waited[()]:.2f} s for another session's start"
    assert waited[("workspace-io-blocked-while-starting",)] > 1.0, waited


# ----- performance defects: each SLA check has a defect it must catch ---------------------------------------------
# Each test measures the clean and the defective platform in the same test and compares them, so a busy machine
# slows both alike: a defect that adds a delay must add most of it (a difference, since the clean figure itself
# varies with the machine), one that multiplies a figure must multiply it (a ratio).


def median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def timed(call: Callable[[], object]) -> float:
    began = time.monotonic()
    call()
    return time.monotonic() - began


def warm_start_ms(platform: Platform) -> float:
    wait_for(lambda: platform.call("GET", "/capacity").json()["warmPool"] >= 1, what="a warm agent")
    body = platform.wait_status(platform.create()["sessionId"], "RUNNING")
    assert body["startType"] == "warm", body
    return float(body["startDurationMs"])


def test_slow_warm_start(platform_factory: Factory) -> None:
    """A warm start takes many times longer with the defect (0.5 s more than the usual ~30 ms)."""
    clean, slow = (warm_start_ms(platform_factory(*d, warm_pool_size=1)) for d in ((), ("slow-warm-start",)))
    assert slow >= clean + 400, f"warm start: {clean:.0f} ms clean, {slow:.0f} ms with the defect (adds 500 ms)"


def create_seconds(platform: Platform, count: int) -> list[float]:
    return [timed(lambda i=i: platform.create(f"u{i}")) for i in range(count)]


def test_slow_create(platform_factory: Factory) -> None:
    clean, slow = (median(create_seconds(platform_factory(*d), 3)) for d in ((), ("slow-create",)))
    assert slow >= clean + 0.4, f"create: {clean * 1000:.0f} ms clean, {slow * 1000:.0f} ms defect (adds 500 ms)"


def test_slow_create_outliers(platform_factory: Factory) -> None:
    """One create in five is slow (0.75 s more); the others are as fast as ever."""
    seconds = create_seconds(platform_factory("slow-create-outliers"), 10)
    slow = [i for i, s in enumerate(seconds) if s >= 0.75]
    fast = [s for i, s in enumerate(seconds) if i not in slow]
    assert slow == [4, 9], f"the 5th and the 10th create are the outliers: {[round(s, 3) for s in seconds]}"
    assert min(seconds[i] for i in slow) >= median(fast) + 0.6, f"outliers add 0.75 s: {seconds}"


def file_op_seconds(platform: Platform, sid: str, count: int) -> list[float]:
    out = []
    for i in range(count):
        path = f"/sessions/{sid}/files/perf/{i % 3}.txt"
        out.append(timed(lambda p=path: platform.call("PUT", p, data=b"x" * 1024).raise_for_status()))
        out.append(timed(lambda p=path: platform.call("GET", p).raise_for_status()))
    return out


def test_slow_file_ops(platform_factory: Factory) -> None:
    clean, slow = (
        median(file_op_seconds(platform, running_session(platform), 4))
        for platform in (platform_factory(), platform_factory("slow-file-ops"))
    )
    assert slow >= clean + 0.2, f"file op: {clean * 1000:.0f} ms clean, {slow * 1000:.0f} ms defect (adds 250 ms)"


def read_seconds(platform: Platform, path: str, count: int) -> list[float]:
    return [timed(lambda: platform.call("GET", path).raise_for_status()) for _ in range(count)]


def test_slow_api(platform_factory: Factory) -> None:
    """GET /sessions/{id} is slow with the defect; GET /health (no session read) is not."""
    for defect in ((), ("slow-api",)):
        platform = platform_factory(*defect)
        sid = running_session(platform)
        read, health = (
            median(read_seconds(platform, f"/sessions/{sid}", 5)),
            median(read_seconds(platform, "/health", 5)),
        )
        if defect:
            assert read >= health + 0.2, f"read {read * 1000:.0f} ms, health {health * 1000:.0f} ms (adds 250 ms)"
        else:
            assert read < health + 0.2, f"clean: read {read * 1000:.0f} ms, health {health * 1000:.0f} ms"


def cpu_cores_used(platform: Platform, sid: str, seconds: float = 2.0) -> float:
    """The cores a session's container used over ``seconds`` (its CPU time over wall time)."""
    proc = platform.container(sid)
    before, began = sum(proc.cpu_times()[:2]), time.monotonic()
    time.sleep(seconds)  # a window of CPU use to measure, not a wait for a condition
    return (sum(proc.cpu_times()[:2]) - before) / (time.monotonic() - began)


def test_cpu_hog(platform_factory: Factory) -> None:
    """An idle session's container uses next to no CPU; with the defect its runaway thread burns most of a core."""
    clean, hog = (
        cpu_cores_used(platform, running_session(platform))
        for platform in (platform_factory(), platform_factory("cpu-hog"))
    )
    # Its cgroup's fair share on a busy machine may be little, but an idle agent's is next to nothing.
    assert hog >= max(0.1, 10 * clean), f"container CPU: {clean:.3f} cores clean, {hog:.3f} with the defect"


def test_memory_hog(platform_factory: Factory) -> None:
    """File operations grow the container's memory to ~90 % of its limit with the defect; a clean one stays small."""
    limit = 128 * 1024 * 1024
    resident = []
    for defect in ((), ("memory-hog",)):
        platform = platform_factory(*defect, container_memory_limit=limit)
        sid = running_session(platform)
        file_op_seconds(platform, sid, 30)
        resident.append(platform.container(sid).memory_info().rss)
    clean, hog = resident
    assert 0.8 * limit <= hog <= limit and hog >= 2 * clean, f"container RSS: {clean} clean, {hog} with the defect"


def concurrent_seconds(platform: Platform, path: str, clients: int, each: int) -> float:
    """Wall time for ``clients`` threads each sending ``each`` GET ``path`` one after another."""
    from concurrent.futures import ThreadPoolExecutor

    def client(_: int) -> None:
        with requests.Session() as http:
            for _ in range(each):
                http.get(f"{platform.url}{path}", timeout=10).raise_for_status()

    with ThreadPoolExecutor(clients) as pool:
        return timed(lambda: list(pool.map(client, range(clients))))


def test_collapse_under_load(platform_factory: Factory) -> None:
    """A lone client is served as before; eight at once queue for one 6 ms lane with the defect, so they can take
    no less than 6 ms a request however fast the machine (the clean platform serves them in parallel)."""
    alone, crowd = [], []
    for defect in ((), ("collapse-under-load",)):
        platform = platform_factory(*defect)
        path = f"/sessions/{running_session(platform)}"
        alone.append(concurrent_seconds(platform, path, 1, 10) / 10)
        crowd.append(concurrent_seconds(platform, path, 8, 10) / 80)
    figures = (
        f"alone {alone[0] * 1000:.1f} / {alone[1] * 1000:.1f} ms, crowded {crowd[0] * 1000:.1f} / {crowd[1] * 1000:.1f}"
    )
    assert crowd[1] >= 0.006 * 0.9, f"crowded requests share one 6 ms lane (clean / defect): {figures}"
    assert alone[1] <= 1.5 * alone[0] + 0.005, f"a lone client is not slowed (clean / defect): {figures}"


def test_collapse_under_concurrency(platform_factory: Factory) -> None:
    """File calls of one session are as fast as ever; with three sessions busy each waits 15 ms with the defect."""
    for defect in ((), ("collapse-under-concurrency",)):
        platform = platform_factory(*defect)
        sids = [running_session(platform) for _ in range(3)]
        one = median(read_seconds(platform, f"/sessions/{sids[0]}/files", 6))
        three = median(
            [s for _ in range(3) for sid in sids for s in read_seconds(platform, f"/sessions/{sid}/files", 1)]
        )
        if defect:
            assert three >= 0.015 and three >= one + 0.01, f"one session {one * 1000:.1f} ms, three {three * 1000:.1f}"
        else:
            assert three < one + 0.01, f"clean: one session {one * 1000:.1f} ms, three {three * 1000:.1f} ms"


def test_slow_at_sustained_rate(platform_factory: Factory) -> None:
    """A start right after two deletes waits for them with the defect (1.5 s each); a clean one does not."""
    starts = []
    for defect in ((), ("slow-at-sustained-rate",)):
        platform = platform_factory(*defect, warm_pool_size=0)
        for _ in range(2):
            assert platform.call("DELETE", f"/sessions/{running_session(platform)}").status_code == 204
        body = platform.wait_status(platform.create()["sessionId"], "RUNNING", timeout=15)
        starts.append(float(body["startDurationMs"]) / 1000)
    clean, slow = starts
    assert slow >= 3.0 and slow >= clean + 2.5, f"start after two deletes: {clean:.2f} s clean, {slow:.2f} s defect"


def test_restart_renews_session(platform_factory: Factory) -> None:
    """A restart keeps createdAt and expiresAt, unless the defect writes the record afresh (a new TTL)."""
    for defect in (), ("restart-renews-session",):
        platform = platform_factory(*defect)
        sid = running_session(platform)
        before = platform.session(sid)
        platform.container(sid).send_signal(signal.SIGKILL)
        after = platform.wait_status(sid, "RUNNING", restartCount=1)
        kept = (after["createdAt"], after["expiresAt"]) == (before["createdAt"], before["expiresAt"])
        assert kept is not bool(defect), f"defect={defect}: {before} -> {after}"
        if defect:
            assert after["createdAt"] > before["createdAt"] and after["expiresAt"] >= before["expiresAt"]


def test_updated_at_frozen(platform_factory: Factory) -> None:
    """Each transition moves updatedAt on, unless the defect leaves it at the create time."""
    for defect in (), ("updated-at-frozen",):
        platform = platform_factory(*defect)
        sid = running_session(platform)
        body = platform.session(sid)
        assert body["version"] > 1, body
        moved = body["updatedAt"] > body["createdAt"]
        assert moved is not bool(defect), f"defect={defect}: {body}"


def _stuck_record(platform: Platform, sid_like: str) -> tuple[SessionStore, str, float]:
    """A copy of a session's record, STARTING with no task: a start no API target carries out."""
    store = SessionStore(platform.endpoints["DYNAMODB_ENDPOINT_URL"], Settings())
    record = store.get(sid_like)
    assert record is not None
    stuck = {**record, "sessionId": "s-stuck0000000001", "status": "STARTING", "taskId": "", "version": 1}
    stuck["updatedAt"] = stuck["createdAt"] = time.time()
    store.put_new(stuck)
    return store, stuck["sessionId"], stuck["updatedAt"]


def test_stuck_sessions_kept(platform_factory: Factory) -> None:
    """A start nobody carries out ends FAILED (stuck) after start_timeout, unless the defect keeps it for good."""
    for defect, status in ((), "FAILED"), (("stuck-sessions-kept",), "STARTING"):
        platform = platform_factory(*defect, start_timeout=1.0)
        store, sid, planted = _stuck_record(platform, running_session(platform))
        wait_for(lambda t=planted: time.time() - t > 1.5, what="the start timeout to pass")
        platform.call("POST", "/admin/reaper/run")
        record = store.get(sid)
        assert record is not None and record["status"] == status, f"defect={defect}: {record}"


def test_stuck_ended_early(platform_factory: Factory) -> None:
    """The reaper leaves a start alone within start_timeout, unless the defect ends it after 1 s."""
    for defect, status in ((), "STARTING"), (("stuck-ended-early",), "FAILED"):
        platform = platform_factory(*defect, start_timeout=30.0)
        store, sid, planted = _stuck_record(platform, running_session(platform))
        wait_for(lambda t=planted: time.time() - t > 1.5, what="a second and a half to pass")
        platform.call("POST", "/admin/reaper/run")
        record = store.get(sid)
        assert record is not None and record["status"] == status, f"defect={defect}: {record}"


def test_ecs_in_file_path(platform_factory: Factory) -> None:
    """A file call does not need the control plane, unless the defect asks ECS on every call and waits out a refusal."""
    for defect, stalls in ((), False), (("ecs-in-file-path",), True):
        platform = platform_factory(*defect)
        sid = running_session(platform)
        plane = Path(platform.endpoints["CONTROL_PLANE_FILE"])
        plane.write_text("ServiceUnavailable")
        took = []
        try:
            for _ in range(3):  # the fastest of three: a busy machine slows some calls, the defect every one
                began = time.monotonic()
                assert platform.call("PUT", f"/sessions/{sid}/files/f.txt", data=b"x").status_code == 201
                took.append(time.monotonic() - began)
        finally:
            plane.unlink()
        assert (min(took) >= 1.5) is stalls, f"defect={defect}: file calls took {took} s during the outage"
