"""Containers of the embedded platform: processes tagged with ``TESTBED_INSTANCE`` and ``session=<id>``."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Callable

import psutil

from ..base import Container, ContainerBackend, ContainerBackendError
from .faults import ExitWatch

EXIT_WAIT = 2.0  # seconds a killed container is given to exit before the kill's own moment counts instead

# ``session=<id>`` in the process title, or ``--session <id>`` before the agent has set its title.
_TOKEN = r"(?:^|\s)(?:{0}=|--{0}[= ])(\S+)"
_SESSION = re.compile(_TOKEN.format("session"))
_TASK = re.compile(_TOKEN.format("task"))
_INSTANCE = re.compile(_TOKEN.format("instance"))
_UNASSIGNED = ("", "-")


class LocalProcessBackend(ContainerBackend):
    """Finds containers in the process table with psutil.

    A process is a container of this instance when its command line has a ``session=`` token and it is
    tagged with the instance: ``TESTBED_INSTANCE=<instance id>`` in its environment, or, because
    ``setproctitle`` may overwrite the environment block that ``/proc`` shows, ``instance=<id>`` in its
    title. A process tagged with another instance is never ours. Zombies count as dead.
    """

    name = "local processes"
    INSTANCE_VARIABLE = "TESTBED_INSTANCE"

    def __init__(self, instance_id: Callable[[], str] | str, traces: Callable[[str], list[str]] | None = None) -> None:
        self._traces = traces
        self._instance_id = instance_id if callable(instance_id) else (lambda: instance_id)

    @property
    def instance_id(self) -> str:
        value = str(self._instance_id() or "")
        if not value:
            raise ContainerBackendError("The platform instance id is unknown (PLATFORM_INSTANCE is empty).")
        return value

    def list_containers(self) -> list[Container]:
        instance = self.instance_id
        containers = []
        for proc in psutil.process_iter(["pid", "cmdline", "create_time", "status"]):
            info = proc.info
            if info.get("status") == psutil.STATUS_ZOMBIE or proc.pid == os.getpid():
                continue
            command = " ".join(info.get("cmdline") or [])
            match = _SESSION.search(command)
            if not match:
                continue
            if not self._belongs(proc, command, instance):
                continue
            session = match.group(1)
            task = _TASK.search(command)
            containers.append(
                Container(
                    container_id=f"{proc.pid}@{info.get('create_time')}",
                    session_id=None if session in _UNASSIGNED else session,
                    task_id=None if not task or task.group(1) in _UNASSIGNED else task.group(1),
                    pid=proc.pid,
                    started_at=float(info.get("create_time") or 0.0),
                    description=command[:200],
                )
            )
        return containers

    def _belongs(self, proc: psutil.Process, command: str, instance: str) -> bool:
        try:
            tag = proc.environ().get(self.INSTANCE_VARIABLE)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            return False
        if tag is not None:
            return tag == instance
        title = _INSTANCE.search(command)
        return title is not None and title.group(1) == instance

    def _same_process(self, container: Container) -> psutil.Process | None:
        if container.pid is None:
            return None
        try:
            proc = psutil.Process(container.pid)
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
            if abs(proc.create_time() - container.started_at) > 0.01:
                return None
            return proc
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            return None

    def is_alive(self, container: Container) -> bool:
        return self._same_process(container) is not None

    def kill(self, container: Container, sig: signal.Signals) -> float | None:
        """Sends ``sig``; for SIGKILL and SIGTERM returns the moment the process exited (a pidfd's event, waited
        for up to ``EXIT_WAIT`` seconds): a process that handles SIGTERM exits a little later, and recovery counts
        from the failure, not from the signal. ``None`` when it did not exit in that time (the call's moment)."""
        proc = self._same_process(container)
        if proc is None:
            raise ContainerBackendError(
                f"Container pid {container.pid} of session {container.session_id} is no longer running."
            )
        watch = ExitWatch(container.pid, lifetime=EXIT_WAIT) if sig in (signal.SIGKILL, signal.SIGTERM) else None
        try:
            proc.send_signal(sig)
        except psutil.NoSuchProcess:
            raise ContainerBackendError(f"Container pid {container.pid} exited before {sig.name} arrived.") from None
        if watch is None:
            return None
        exited = watch.wait(EXIT_WAIT)
        watch.close()
        return exited

    def wall_clock_start(self, container: Container) -> float:
        """The process's start on the wall clock, to the clock tick. psutil's create time counts from the boot time
        ``/proc/stat`` gives in whole seconds, so it reads up to a second early against ``time.time()``; this counts
        from the boot time the clocks give (wall clock minus ``CLOCK_BOOTTIME``) instead."""
        boot = time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)
        return container.started_at - psutil.boot_time() + boot

    def traces_of(self, session_id: str) -> list[str]:
        """What the session still holds on the platform besides its process (its service-mesh hop), as the
        ``traces`` callable the library wired in reports it."""
        return self._traces(session_id) if self._traces is not None else []
