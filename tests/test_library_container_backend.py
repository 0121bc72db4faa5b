"""The local container backend against real processes tagged like the platform's containers."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "libraries"))

from PlatformLibrary.targets import ContainerBackendError, create_backend
from PlatformLibrary.targets.containers import parse_signal
from PlatformLibrary.targets.embedded.processes import LocalProcessBackend

SLEEPER = "import time; time.sleep(60)"


@pytest.fixture
def instance():
    return f"unit-{secrets.token_hex(4)}"


@pytest.fixture
def spawn():
    started: list[subprocess.Popen] = []

    def _spawn(*argv: str, instance: str | None = None) -> subprocess.Popen:
        env = {k: v for k, v in os.environ.items() if k != "TESTBED_INSTANCE"}
        if instance is not None:
            env["TESTBED_INSTANCE"] = instance
        proc = subprocess.Popen([sys.executable, "-c", SLEEPER, *argv], env=env)
        started.append(proc)
        return proc

    yield _spawn
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=5)


def wait_for(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("condition not met")


def test_finds_only_containers_of_its_instance(spawn, instance):
    ours = spawn("session=s-aaa", "task=s-aaa/1", instance=instance)
    spawn("session=s-aaa", "task=s-aaa/1", instance="another-instance")
    spawn("session=s-aaa")  # no tag at all
    pool = spawn("session=-", "task=-", instance=instance)
    backend = LocalProcessBackend(instance)
    found = wait_for(lambda: backend.containers_of("s-aaa"))
    assert [c.pid for c in found] == [ours.pid]
    assert found[0].task_id == "s-aaa/1"
    everything = wait_for(lambda: len(backend.list_containers()) == 2 and backend.list_containers())
    assert {c.pid for c in everything} == {ours.pid, pool.pid}
    assert next(c for c in everything if c.pid == pool.pid).session_id is None


def test_process_title_tags_the_instance_when_the_environment_is_gone(spawn, instance):
    titled = spawn("testbed-agent", f"instance={instance}", "session=s-bbb", "task=s-bbb/2")
    spawn("testbed-agent", "instance=someone-else", "session=s-bbb", "task=s-bbb/2")
    backend = LocalProcessBackend(instance)
    found = wait_for(lambda: backend.containers_of("s-bbb"))
    assert [c.pid for c in found] == [titled.pid]


def test_agent_command_line_before_the_title_is_set(spawn, instance):
    proc = spawn("--instance", instance, "--session", "s-ccc", "--task", "s-ccc/1", instance=instance)
    backend = LocalProcessBackend(instance)
    found = wait_for(lambda: backend.containers_of("s-ccc"))
    assert found[0].pid == proc.pid and found[0].task_id == "s-ccc/1"


@pytest.mark.parametrize("sig", ["SIGKILL", "SIGTERM"])
def test_kill_by_pid_and_liveness(spawn, instance, sig):
    proc = spawn("session=s-ddd", instance=instance)
    backend = LocalProcessBackend(instance)
    container = wait_for(lambda: backend.containers_of("s-ddd"))[0]
    assert backend.is_alive(container)
    backend.kill(container, parse_signal(sig))
    code = proc.wait(timeout=5)
    assert code == -parse_signal(sig)
    assert not backend.is_alive(container)
    assert backend.containers_of("s-ddd") == []
    with pytest.raises(ContainerBackendError, match="no longer running"):
        backend.kill(container, signal.SIGKILL)


def test_zombies_are_not_containers(spawn, instance):
    proc = spawn("session=s-eee", instance=instance)
    backend = LocalProcessBackend(instance)
    wait_for(lambda: backend.containers_of("s-eee"))
    os.kill(proc.pid, signal.SIGKILL)
    # Not reaped yet: the process is a zombie until wait().
    wait_for(lambda: not backend.containers_of("s-eee"))
    proc.wait(timeout=5)


def test_kill_refuses_a_reused_pid(spawn, instance):
    proc = spawn("session=s-fff", instance=instance)
    backend = LocalProcessBackend(instance)
    container = wait_for(lambda: backend.containers_of("s-fff"))[0]
    impostor = type(container)(**{**container.__dict__, "started_at": container.started_at - 100})
    with pytest.raises(ContainerBackendError):
        backend.kill(impostor, signal.SIGKILL)
    assert proc.poll() is None


def test_parse_signal():
    assert parse_signal("SIGKILL") is signal.SIGKILL
    assert parse_signal("term") is signal.SIGTERM
    assert parse_signal("9") is signal.SIGKILL
    with pytest.raises(ValueError, match="Unknown signal 'SIGNOPE'"):
        parse_signal("SIGNOPE")


def test_aws_target_has_no_backend_yet():
    with pytest.raises(ContainerBackendError, match="ECS backend"):
        create_backend("aws", lambda: "x")
    with pytest.raises(ContainerBackendError, match="Unknown target"):
        create_backend("mars", lambda: "x")
    with pytest.raises(ContainerBackendError, match="instance id is unknown"):
        LocalProcessBackend("").list_containers()
