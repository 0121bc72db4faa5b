"""The embedded platform while its container control plane (the ECS API) is unavailable (docs/platform-contract.md).

Sessions wait or fail cleanly, running containers are left alone, nothing leaks, and everything recovers once the
control plane answers again. The fault is the platform's control-plane file (``CONTROL_PLANE_FILE``).
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from testbed.controlplane import ControlPlane, ControlPlaneUnavailable, ControlPlaneUnreachable
from tests.conftest import Factory
from tests.platform_helpers import Platform, wait_for
from tests.test_defects import running_session, stays


def plane_of(platform: Platform) -> Path:
    return Path(platform.endpoints["CONTROL_PLANE_FILE"])


def warm_pool(platform: Platform) -> int:
    return platform.call("GET", "/capacity").json()["warmPool"]


def test_the_control_plane_file_says_which_error_ecs_answers(tmp_path: Path) -> None:
    path = tmp_path / "control-plane"
    plane = ControlPlane(path)
    assert plane.available()
    path.write_text("ThrottlingException\n")
    with pytest.raises(ControlPlaneUnavailable, match="ECS RunTask failed with ThrottlingException"):
        plane.check("RunTask")
    path.write_text("down")  # any other word: the API is down all the same
    assert plane.error() == "ServiceUnavailable"
    path.write_text("")
    assert plane.available()
    path.write_text("ServiceUnavailable")
    path.unlink()
    assert plane.available()


def test_an_unreachable_control_plane_fails_each_call_after_the_connect_timeout_without_an_ecs_error(
    tmp_path: Path,
) -> None:
    path = tmp_path / "control-plane"
    plane = ControlPlane(path, connect_timeout=0.3, endpoint="ecs.eu-west-1.amazonaws.com")
    path.write_text("Unreachable\n")
    assert not plane.available() and plane.error() == "Unreachable"
    began = time.monotonic()
    with pytest.raises(ControlPlaneUnreachable) as raised:
        plane.check("StopTask")
    assert time.monotonic() - began >= 0.3
    assert str(raised.value) == (
        "container control plane unavailable: ECS StopTask failed: Connect timeout on endpoint URL: "
        '"https://ecs.eu-west-1.amazonaws.com/" (no answer within 0.3 s)'
    )
    assert isinstance(raised.value, ControlPlaneUnavailable) and raised.value.code == "Unreachable"
    path.unlink()
    plane.check("StopTask")


def test_cut_off_from_ecs_a_delete_and_a_crash_wait_for_it_and_nothing_is_counted_as_a_crash(
    platform_factory: Factory,
) -> None:
    platform = platform_factory(ecs_connect_timeout=0.5)
    deleted, crashed = running_session(platform), running_session(platform)
    container = platform.container(deleted)
    plane_of(platform).write_text("Unreachable")
    began = time.monotonic()
    assert platform.call("DELETE", f"/sessions/{deleted}").status_code == 204
    assert time.monotonic() - began < 0.5, "the delete does not wait out the connect timeout: the stopper does"
    assert stays(container.is_running, 1.0), "ECS cannot be told to stop a task it is not reached by"
    platform.container(crashed).send_signal(signal.SIGKILL)
    platform.wait_status(crashed, "RESTARTING", restartCount=1)
    assert stays(lambda: platform.session(crashed)["status"] == "RESTARTING" and not platform.containers(crashed), 3.0)
    body = platform.session(crashed)
    assert body["restartCount"] == 1 and "SIGKILL" in body["lastFailureReason"]
    plane_of(platform).unlink()
    wait_for(lambda: not platform.containers(deleted), timeout=5, what="the deleted session's container to stop")
    platform.wait_status(crashed, "RUNNING", restartCount=1)


def test_a_warm_agent_still_starts_a_session_and_a_cold_start_waits_for_the_control_plane(
    platform_factory: Factory,
) -> None:
    platform = platform_factory(warm_pool_size=1)
    wait_for(lambda: warm_pool(platform) == 1, what="a full warm pool")
    plane_of(platform).write_text("ServiceUnavailable")
    warm = platform.create("u1")["sessionId"]
    platform.wait_status(warm, "RUNNING", startType="warm")
    cold = platform.create("u2")["sessionId"]
    assert stays(lambda: platform.session(cold)["status"] == "PENDING" and not platform.containers(cold), 1.0)
    assert warm_pool(platform) == 0, "the pool is refilled with RunTask: it waits for ECS"
    plane_of(platform).unlink()
    platform.wait_status(cold, "RUNNING", startType="cold")
    wait_for(lambda: warm_pool(platform) == 1, what="the warm pool refilled")


def test_a_start_fails_cleanly_once_start_timeout_passes(platform_factory: Factory) -> None:
    platform = platform_factory(warm_pool_size=0, start_timeout=1.5)
    plane_of(platform).write_text("ThrottlingException")
    sid = platform.create()["sessionId"]
    body = platform.wait_status(sid, "FAILED", timeout=6)
    assert "ECS RunTask failed with ThrottlingException" in body["lastFailureReason"]
    assert body["stoppedReason"] == "container control plane unavailable"
    assert body["updatedAt"] - body["createdAt"] >= 1.5
    assert platform.containers(sid) == []
    plane_of(platform).unlink()
    running_session(platform)


def test_a_delete_answers_at_once_and_its_container_is_stopped_once_the_control_plane_is_back(
    platform_factory: Factory,
) -> None:
    platform = platform_factory()
    sid = running_session(platform)
    container = platform.container(sid)
    plane_of(platform).write_text("ServiceUnavailable")
    began = time.monotonic()
    assert platform.call("DELETE", f"/sessions/{sid}").status_code == 204
    assert time.monotonic() - began < 1.0
    assert platform.call("GET", f"/sessions/{sid}").status_code == 404
    assert stays(container.is_running, 1.5), "ECS cannot stop a task while it is unavailable"
    reaped = [a for a in platform.call("GET", "/admin/reaper").json()["actions"] if a.get("sessionId") == sid]
    assert reaped == [], "the reaper's stop is a StopTask too: it waits for ECS"
    plane_of(platform).unlink()
    wait_for(lambda: not platform.containers(sid), timeout=5, what="the deleted session's container to stop")


def test_a_crash_during_the_outage_is_restarted_after_it_without_using_up_the_restart_policy(
    platform_factory: Factory,
) -> None:
    platform = platform_factory()
    sid = running_session(platform)
    plane_of(platform).write_text("ServiceUnavailable")
    platform.container(sid).send_signal(signal.SIGKILL)
    platform.wait_status(sid, "RESTARTING", restartCount=1)
    # Longer than five restarts take to back off (0.1 + 0.2 + 0.4 + 0.8 + 1.6 s): refused starts are no crashes.
    assert stays(lambda: platform.session(sid)["status"] == "RESTARTING" and not platform.containers(sid), 4.0)
    plane_of(platform).unlink()
    body = platform.wait_status(sid, "RUNNING", restartCount=1)
    assert body["lastRecoveryMs"] >= 4000, "the platform's own recovery time includes the wait for ECS"


def test_capacity_is_not_scaled_during_the_outage(platform_factory: Factory) -> None:
    platform = platform_factory(min_capacity=2, max_capacity=6, scale_out_delay=0.2, warm_pool_size=0)
    plane_of(platform).write_text("ServiceUnavailable")
    for i in range(4):
        platform.create(f"u{i}")
    assert stays(lambda: platform.call("GET", "/capacity").json()["capacity"] == 2, 1.0)
    plane_of(platform).unlink()
    wait_for(lambda: platform.call("GET", "/capacity").json()["capacity"] > 2, what="the scale-out after the outage")
