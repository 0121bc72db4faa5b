"""Container runtime: the ECS service scheduler of the embedded platform.

Each session's container is a real OS process (:mod:`testbed.agent`). The runtime starts containers within the
provisioned capacity (cold: image pull then process start; warm: a pre-started agent from the pool), supervises
them (restart with backoff under a restart policy, recording restart count, status and failure reason on the
session), stops them on delete, and scales capacity out and in.

Every call a real platform makes to ECS (start a task, stop one, change the desired count) first asks the control
plane (:mod:`testbed.controlplane`). While ECS is unavailable, a start waits with backoff (for at most
``start_timeout``, then the session is ``FAILED``), a stop is retried until ECS answers (the container keeps running
meanwhile, as a task does), the warm pool and the capacity stay as they are, and running containers are untouched.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import http.client
import json
import logging
import os
import selectors
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testbed import clock
from testbed.agent import provisioning_lock_path
from testbed.awsface.tasks import TaskRegistry
from testbed.cgroups import Limits
from testbed.config import Settings
from testbed.controlplane import UNREACHABLE, ControlPlane, ControlPlaneUnavailable, ecs_endpoint_name
from testbed.faultproxy.client import ToxiproxyClient, ToxiproxyError
from testbed.store import SessionStore, StoreUnavailable

log = logging.getLogger("testbed.runtime")
PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Performance defects (testbed/config.py DEFECTS), sized against the local profile's SLAs.
SLOW_WARM_START_S = 0.5  # slow-warm-start: a warm start is ~30 ms; the local bound is p95 < 300 ms
SUSTAINED_WAIT_PER_STOP_S = 1.5  # slow-at-sustained-rate: a start waits this long per session stopped recently...
SUSTAINED_WINDOW_S = 60.0  # ...within this window...
SUSTAINED_WAIT_MAX_S = 6.0  # ...and at most this long, below start_timeout (10 s): slow, never stuck
MEMORY_HOG_SHARE = 0.9  # memory-hog: the share of its memory limit a container's file cache grows to


class StartFailed(RuntimeError):
    """A container died or timed out before it reported ready."""


@dataclass
class Container:
    session_id: str
    task_id: str
    proc: subprocess.Popen[bytes]
    port: int = 0
    route_port: int = 0  # where the API reaches it: the session's service-mesh hop, or the port itself
    ready: bool = False
    stopping: bool = False
    cgroup: str = ""


@dataclass
class Wanted:
    """A session the runtime is responsible for keeping a container up for."""

    session_id: str
    workspace: str
    generation: int = 0
    restarts: collections.deque[float] = field(default_factory=collections.deque)
    restart_count: int = 0
    failed_at: float = 0.0  # monotonic time the last failure was detected
    last_activity: float = field(default_factory=clock.now)
    starting: bool = False
    claimed: bool = False  # its record went PENDING -> STARTING (a start that waited for ECS does not do it again)
    plane_since: float | None = None  # monotonic time its current start first found ECS unavailable
    plane_retries: int = 0


def describe_exit(returncode: int | None, oom: bool) -> str:
    if oom:
        return "OOMKilled: container exceeded its memory limit"
    if returncode is None:
        return "container did not exit"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"container exited on {name}"
    return f"container exited with code {returncode}"


class Runtime:
    def __init__(
        self,
        settings: Settings,
        store: SessionStore,
        instance: str,
        state_dir: Path,
        mesh: ToxiproxyClient | None = None,
        tasks: TaskRegistry | None = None,
    ) -> None:
        self.settings = settings
        # With the AWS face on, every container is also an ECS task there, and a session's taskId is its ARN.
        self.tasks = tasks
        self.mesh = mesh if settings.mesh_proxy else None
        self.mesh_lock = threading.Lock()
        self.mesh_ports: dict[str, int] = {}
        self.store = store
        self.instance = instance
        self.state_dir = state_dir
        self.lock = threading.RLock()
        self.wake = threading.Condition(self.lock)
        self.containers: dict[str, Container] = {}
        self.wanted: dict[str, Wanted] = {}
        self.queue: collections.deque[str] = collections.deque()
        self.pool: list[Container] = []
        self.pool_starting = 0
        self.leaked: list[subprocess.Popen[bytes]] = []  # processes a defect lost track of; reaped only
        self.draining: set[int] = set()  # defect billed-after-delete: pids of deleted sessions' containers left running
        self.control_plane = ControlPlane(
            state_dir / "control-plane", settings.ecs_connect_timeout, ecs_endpoint_name(settings.region)
        )
        self.unstopped: list[Container] = []  # containers whose StopTask ECS refused; stopped once it answers
        self.owned: dict[int, subprocess.Popen[bytes]] = {}
        self.reserved = 0  # admitted creates not yet submitted
        self.unsettled: set[str] = set()  # sessions whose last store write failed after the container started
        self.capacity = settings.min_capacity
        self.activities: collections.deque[dict[str, Any]] = collections.deque(maxlen=50)
        memory = 0 if settings.has("no-memory-limit") else settings.container_memory_limit
        self.limits = Limits(instance, memory, settings.container_cpu_quota)
        self.executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix="start")
        self.stopped = threading.Event()
        self.agent_log = open(state_dir / "agents.log", "ab")  # noqa: SIM115 - lives as long as the runtime
        self.env = {**os.environ, "TESTBED_INSTANCE": instance, "PYTHONPATH": str(PROJECT_ROOT)}
        self._demand_since: float | None = None
        self._surplus_since: float | None = None
        self.recent_stops: collections.deque[float] = collections.deque()  # defect slow-at-sustained-rate

    # ----- lifecycle of the runtime itself -------------------------------------------------------------------
    def start(self) -> None:
        for target, name in (
            (self._schedule_loop, "scheduler"),
            (self._monitor_loop, "monitor"),
            (self._scale_loop, "autoscaler"),
            (self._pool_loop, "warm-pool"),
            (self._stop_loop, "stopper"),
        ):
            threading.Thread(target=target, name=name, daemon=True).start()

    def shutdown(self) -> None:
        self.stopped.set()
        with self.wake:
            self.wake.notify_all()
            victims = list(self.containers.values()) + self.pool + self.unstopped
            self.containers.clear()
            self.pool.clear()
            self.unstopped.clear()
        for container in victims:
            self._terminate(container)
        for proc in self.leaked:
            with contextlib.suppress(OSError):
                proc.kill()
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.limits.remove_all()

    # ----- admission and scheduling ----------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        with self.lock:
            running = sum(1 for c in self.containers.values() if c.ready and not c.stopping)
            desired = len(self.wanted)
            return {
                "running": running,
                "pending": desired - running,
                "desired": desired,
                "capacity": self.capacity,
                "max": self.settings.max_capacity,
                "warmPool": len(self.pool),
            }

    def admit(self) -> bool:
        """Backpressure: refuse work beyond the ceiling or beyond a bounded queue of waiting sessions.

        An admitted create holds a reservation until :meth:`submit` or :meth:`release`, so creates arriving at the
        same moment cannot all pass the check before any of them is counted."""
        with self.lock:
            if not self.settings.has("no-backpressure"):
                desired = len(self.wanted) + self.reserved
                waiting = max(0, desired - self.capacity)
                ceiling = self.settings.max_capacity
                if self.settings.has("capacity-refuses-early"):
                    ceiling = max(1, ceiling // 2)
                if desired >= ceiling or waiting >= self.settings.max_pending:
                    return False
            self.reserved += 1
            return True

    def release(self) -> None:
        """Give back the reservation of an admitted create that failed before it was submitted."""
        with self.lock:
            self.reserved = max(0, self.reserved - 1)

    def submit(self, session_id: str, workspace: str) -> None:
        with self.wake:
            self.reserved = max(0, self.reserved - 1)
            self.wanted[session_id] = Wanted(session_id, workspace)
            self.queue.append(session_id)
            self.wake.notify_all()

    def _active(self) -> int:
        return sum(1 for w in self.wanted.values() if w.starting) + sum(
            1 for c in self.containers.values() if c.ready and not c.stopping
        )

    def _schedule_loop(self) -> None:
        while not self.stopped.is_set():
            with self.wake:
                while self.queue and self._active() < self.capacity:
                    sid = self.queue.popleft()
                    wanted = self.wanted.get(sid)
                    if wanted is None:
                        continue
                    wanted.starting = True
                    self.executor.submit(self._start, sid, False)
                self.wake.wait(0.5)

    # ----- starting containers -------------------------------------------------------------------------------
    def _spawn(self, session_id: str, task_id: str, workspace: str, init_delay: float) -> Container:
        cmd = [
            sys.executable,
            "-m",
            "testbed.agent",
            "--instance",
            self.instance,
            "--session",
            session_id,
            "--task",
            task_id,
            "--workspace",
            workspace,
            "--init-delay",
            str(init_delay),
        ]
        if self.settings.has("unsafe-paths"):
            cmd.append("--unsafe-paths")
        if self.settings.has("efs-silent-fallback"):
            cmd.append("--efs-silent-fallback")
        if self.settings.has("slow-file-ops"):
            cmd.append("--slow-file-ops")
        if self.settings.has("cpu-hog"):
            cmd.append("--cpu-hog")
        if self.settings.has("memory-hog") and self.settings.container_memory_limit > 0:
            cmd += ["--memory-hog", str(int(self.settings.container_memory_limit * MEMORY_HOG_SHARE))]
        if self.stopped.is_set():
            raise StartFailed("the runtime is shutting down")
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=self.agent_log,
            stdin=subprocess.DEVNULL,
            env=self.env,
            cwd=PROJECT_ROOT,
        )
        with self.lock:
            self.owned[proc.pid] = proc
        name = f"{session_id}.{task_id.rsplit('/', 1)[-1]}" if session_id != "-" else f"pool.{proc.pid}"
        self.limits.apply(name, proc.pid)
        if self.tasks is not None:
            known = task_id if session_id != "-" else None
            self.tasks.spawned(known, session_id if session_id != "-" else None, proc, name)
        return Container(session_id, task_id, proc, cgroup=name)

    def _await_ready(self, container: Container, deadline: float) -> None:
        """Read the agent's ``PORT``/``READY`` lines; a death or a timeout before READY is a failed start."""
        proc = container.proc
        assert proc.stdout is not None
        buffer = b""
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            while b"READY\n" not in buffer:  # whole lines: unbuffered stdout may split a print in two
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self._stop_task(container)
                    raise StartFailed("container did not become ready before the start timeout")
                if sel.select(remaining):
                    chunk = os.read(proc.stdout.fileno(), 4096)
                    if not chunk:
                        code = proc.wait(timeout=5)
                        raise StartFailed(describe_exit(code, self.limits.oom_killed(container.cgroup)))
                    buffer += chunk
                    for line in buffer.split(b"\n")[:-1]:
                        if line.startswith(b"PORT "):
                            container.port = int(line.split()[1])
        proc.stdout.close()
        container.ready = True
        if self.tasks is not None:
            self.tasks.ready(proc.pid)

    def _assign_warm(self, session_id: str, task_id: str, workspace: str) -> Container | None:
        with self.lock:
            if not self.pool:
                return None
            container = self.pool.pop()
        if self.settings.has("slow-warm-start"):  # the defect: the warm agent is initialised all over again
            self.stopped.wait(SLOW_WARM_START_S)
        if self.tasks is not None:  # the warm task keeps its ARN and gets the session's tag
            task_id = self.tasks.assign(container.proc.pid, session_id) or task_id
        conn = http.client.HTTPConnection("127.0.0.1", container.port, timeout=2)
        try:
            body = json.dumps({"session": session_id, "task": task_id, "workspace": workspace})
            conn.request("POST", "/assign", body, {"Content-Type": "application/json"})
            if conn.getresponse().status != 200:
                raise OSError("assign refused")
        except OSError:
            self._stop_task(container)
            return None
        finally:
            conn.close()
        container.session_id, container.task_id = session_id, task_id
        return container

    def _start(self, session_id: str, restart: bool) -> None:
        provisioning = None
        if self.settings.has("workspace-io-blocked-while-starting"):  # the defect: a start locks the file system
            provisioning = os.open(provisioning_lock_path(), os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(provisioning, fcntl.LOCK_EX)  # file operations of every container wait (agent.py)
        try:
            self._start_inner(session_id, restart)
        except Exception:
            log.exception("start of %s failed unexpectedly", session_id)
            with self.lock:
                wanted = self.wanted.get(session_id)
                if wanted:
                    wanted.starting = False
        finally:
            if provisioning is not None:
                os.close(provisioning)  # releases the defect's lock

    def _start_inner(self, session_id: str, restart: bool) -> None:
        with self.lock:
            wanted = self.wanted.get(session_id)
            if wanted is None:
                return
            wanted.generation += 1
            task_id = f"{session_id}/{wanted.generation}"
            warm_ready = not restart and bool(self.pool)
        began = time.monotonic()
        # A start that needs ECS and cannot have it waits in its current state (PENDING, RESTARTING).
        if not warm_ready and not self._run_task_accepted(session_id, restart):
            return
        if not restart and not wanted.claimed:
            try:
                if self.store.transition(session_id, {"PENDING"}, {"status": "STARTING"}) is None:
                    self._forget(session_id)
                    return
            except StoreUnavailable:
                self._forget(session_id)  # the reaper marks the record failed once the store answers
                return
            wanted.claimed = True
        backlog = self._sustained_backlog() if not restart else 0.0  # the defect slow-at-sustained-rate
        if backlog and (self.stopped.wait(backlog) or session_id not in self.wanted):
            self._forget(session_id)
            return
        # New sessions take a warm agent when one is ready; a replacement after a crash always starts cold.
        container = None if restart else self._assign_warm(session_id, task_id, wanted.workspace)
        start_type = "warm"
        if container is None:
            start_type = "cold"
            if warm_ready and not self._run_task_accepted(session_id, restart):
                return  # the warm agent went to another session, and ECS is unavailable
            if self.tasks is not None:  # the task exists (PROVISIONING) from before its image pull
                task_id = self.tasks.new_task(session_id).arn
            delay = self.settings.cold_start_delay * (10 if self.settings.has("slow-start") else 1)
            if self.stopped.wait(delay) or session_id not in self.wanted:  # image pull
                if self.tasks is not None:
                    self.tasks.forget_unstarted(task_id, "Session deleted before its task started")
                self._forget(session_id)
                return
            container = self._spawn(session_id, task_id, wanted.workspace, self.settings.app_init_delay)
        task_id = container.task_id
        with self.lock:
            self.containers[session_id] = container
        if restart and self.settings.has("double-start"):
            twin = self._spawn(session_id, task_id, wanted.workspace, 0)
            self._lose_track(twin.proc)
        try:
            if not container.ready:
                self._await_ready(container, began + self.settings.start_timeout)
        except StartFailed as exc:
            with self.lock:
                if self.containers.get(session_id) is container:
                    del self.containers[session_id]
            self.limits.remove(container.cgroup)
            self._on_failure(session_id, str(exc))
            return
        container.route_port = self._route(session_id, container.port)
        took_ms = round((time.monotonic() - began) * 1000, 1)
        if session_id not in self.wanted:  # deleted while starting: its delete may have come before the hop
            self.stop(session_id)
            return
        changes = {
            "status": "RUNNING",
            "taskId": task_id,
            "startType": start_type,
            "startDurationMs": took_ms,
            "restartCount": wanted.restart_count,
        }
        if restart and wanted.failed_at:  # the platform's own record of how long recovery took
            changes["lastRecoveryMs"] = round((time.monotonic() - wanted.failed_at) * 1000, 1)
        if restart and self.settings.has("restart-renews-session"):  # the defect: the record starts over
            now = clock.now()
            changes.update(createdAt=now, expiresAt=int(now + self.settings.session_ttl))
        try:
            if restart and self.settings.has("stale-status"):
                record: dict[str, Any] | None = {}
            else:
                record = self.store.transition(session_id, {"STARTING", "RESTARTING"}, changes)
        except StoreUnavailable:
            record = None
            if self.settings.has("orphan-on-create-failure"):
                with self.lock:  # the defect: the half-created container is forgotten, not stopped
                    self.containers.pop(session_id, None)
                self._lose_track(container.proc)
                self._forget(session_id)
                return
            # The write may have reached DynamoDB before the answer was lost: settle the record once the
            # store answers again instead of leaving it RUNNING with no container.
            with self.lock:
                self.unsettled.add(session_id)
        if record is None:
            self.stop(session_id)
            return
        with self.wake:
            wanted.starting = False
            wanted.plane_since, wanted.plane_retries = None, 0  # a later start waits its own start_timeout
            wanted.last_activity = clock.now()
            self.wake.notify_all()

    def _sustained_backlog(self) -> float:
        """How long a new start waits under the defect slow-at-sustained-rate: per session stopped lately, capped."""
        if not self.settings.has("slow-at-sustained-rate"):
            return 0.0
        now = time.monotonic()
        with self.lock:
            while self.recent_stops and now - self.recent_stops[0] > SUSTAINED_WINDOW_S:
                self.recent_stops.popleft()
            stops = len(self.recent_stops)
        return min(SUSTAINED_WAIT_MAX_S, SUSTAINED_WAIT_PER_STOP_S * stops)

    def _run_task_accepted(self, session_id: str, restart: bool) -> bool:
        """RunTask: True when ECS takes the call; otherwise the start waits for it (see `_wait_for_control_plane`)."""
        try:
            self.control_plane.check("RunTask")
        except ControlPlaneUnavailable as exc:
            self._wait_for_control_plane(session_id, restart, exc)
            return False
        with self.lock:
            wanted = self.wanted.get(session_id)
            if wanted is not None:
                wanted.plane_since, wanted.plane_retries = None, 0
        return True

    def _wait_for_control_plane(self, session_id: str, restart: bool, exc: ControlPlaneUnavailable) -> None:
        """Retry the start with backoff while ECS is unavailable; past ``start_timeout`` the session fails cleanly.

        A refused RunTask is not a crash: it does not count against the restart policy."""
        with self.lock:
            wanted = self.wanted.get(session_id)
            if wanted is None:
                return
            now = time.monotonic()
            if wanted.plane_since is None:
                wanted.plane_since = now
            waited = now - wanted.plane_since
            wanted.plane_retries += 1
            retries = wanted.plane_retries
        if restart and self.settings.has("outage-exhausts-restarts"):
            self._on_failure(session_id, str(exc))  # the defect: each refused RunTask counts as one more crash
            return
        if waited >= self.settings.start_timeout:
            log.warning("session %s: gave up its start after %.1f s: %s", session_id, waited, exc)
            self._forget(session_id)
            with contextlib.suppress(StoreUnavailable):  # else the reaper fails it as stuck once the store answers
                self.store.transition(
                    session_id,
                    {"PENDING", "STARTING", "RESTARTING"},
                    {
                        "status": "FAILED",
                        "lastFailureReason": f"{exc} (waited {waited:.1f} s)",
                        "stoppedReason": "container control plane unavailable",
                    },
                )
            return
        if retries == 1:
            log.warning("session %s: its start waits for the control plane: %s", session_id, exc)
        if not restart and self.settings.has("control-plane-outage-strands-pending"):
            return  # the defect: the refused start is never tried again
        backoff = min(self.settings.restart_backoff_base * 2 ** (retries - 1), self.settings.restart_backoff_max)
        # The last retry comes at the deadline, so a start that cannot be made fails on time.
        self._start_later(min(backoff, self.settings.start_timeout - waited), session_id, restart)

    def _start_later(self, delay: float, session_id: str, restart: bool) -> None:
        timer = threading.Timer(delay, lambda: self.executor.submit(self._start, session_id, restart))
        timer.daemon = True
        timer.start()

    def _forget(self, session_id: str) -> None:
        with self.wake:
            self.wanted.pop(session_id, None)
            with contextlib.suppress(ValueError):
                self.queue.remove(session_id)
            self.wake.notify_all()

    # ----- supervision ---------------------------------------------------------------------------------------
    def _monitor_loop(self) -> None:
        while not self.stopped.wait(0.02):
            crashed: list[tuple[Container, int]] = []
            with self.lock:
                for sid, container in list(self.containers.items()):
                    if container.ready and not container.stopping and container.proc.poll() is not None:
                        del self.containers[sid]
                        crashed.append((container, container.proc.returncode))
                self.leaked = [p for p in self.leaked if p.poll() is None]
                self.owned = {pid: p for pid, p in self.owned.items() if p.poll() is None}
            for container, code in crashed:
                oom = self.limits.oom_killed(container.cgroup)
                reason = describe_exit(code, oom)
                if self.tasks is not None:
                    self.tasks.exited(container.proc.pid, oom)
                self.limits.remove(container.cgroup)
                log.warning("session %s: %s", container.session_id, reason)
                self._on_failure(container.session_id, reason)

    def _on_failure(self, session_id: str, reason: str) -> None:
        """Restart policy: back off and restart, or give up (FAILED) past the restart budget."""
        with self.lock:
            wanted = self.wanted.get(session_id)
            if wanted is None:
                return
            now = time.monotonic()
            while wanted.restarts and now - wanted.restarts[0] > self.settings.restart_window:
                wanted.restarts.popleft()
            exhausted = len(wanted.restarts) >= self.settings.restart_max and not self.settings.has("endless-restarts")
            give_up = self.settings.has("no-restart") or exhausted
            if not give_up:
                wanted.restarts.append(now)
                wanted.restart_count += 1
                wanted.failed_at = now
                wanted.starting = True
            count = wanted.restart_count
        stale = self.settings.has("stale-status")
        try:
            if give_up:
                self._forget(session_id)
                self.store.transition(
                    session_id,
                    {"PENDING", "STARTING", "RUNNING", "RESTARTING"},
                    {
                        "status": "FAILED",
                        "lastFailureReason": reason,
                        "stoppedReason": "restart policy exhausted",
                    },
                )
                return
            if not stale:
                self.store.transition(
                    session_id,
                    {"STARTING", "RUNNING", "RESTARTING"},
                    {"status": "RESTARTING", "restartCount": count, "lastFailureReason": reason},
                )
        except StoreUnavailable:
            log.warning("session %s: could not record the failure; the RUNNING write will carry it", session_id)
        if self.settings.has("workspace-lost-on-restart"):
            shutil.rmtree(wanted.workspace, ignore_errors=True)
        backoff = min(
            self.settings.restart_backoff_base * 2 ** (len(wanted.restarts) - 1),
            self.settings.restart_backoff_max,
        )
        self._start_later(backoff, session_id, True)

    # ----- stopping ------------------------------------------------------------------------------------------
    def _terminate(self, container: Container, grace: float = 2.0) -> None:
        container.stopping = True
        proc = container.proc
        if self.tasks is not None:  # what the platform's own StopTask call would record
            self.tasks.platform_stops(proc.pid, "Stopped by the session service")
        if proc.poll() is None:
            with contextlib.suppress(OSError):
                proc.terminate()
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(OSError):
                    proc.kill()
                proc.wait(timeout=5)
        if proc.stdout and not proc.stdout.closed:
            proc.stdout.close()
        self.limits.remove(container.cgroup)

    def _stop_task(self, container: Container) -> None:
        """StopTask: stop the container now, or, while ECS is unavailable, as soon as it answers again.

        A stop never waits for an ECS that does not answer in its caller's thread (a delete, the reaper): while the
        control plane is down it goes to the stopper, which makes the call once ECS answers."""
        container.stopping = True
        if self.control_plane.error() == UNREACHABLE:
            log.warning(
                "container pid %d (%s) keeps running until ECS can be reached", container.proc.pid, container.task_id
            )
            with self.lock:
                self.unstopped.append(container)
            return
        try:
            self.control_plane.check("StopTask")
        except ControlPlaneUnavailable as exc:
            log.warning(
                "container pid %d (%s) keeps running until ECS answers: %s", container.proc.pid, container.task_id, exc
            )
            with self.lock:
                self.unstopped.append(container)
            return
        self._terminate(container)

    def _stop_loop(self) -> None:
        """Retry the stops ECS refused once it answers again (a refused StopTask leaves the task running)."""
        while not self.stopped.wait(0.2):
            with self.lock:
                if not self.unstopped or not self.control_plane.available():
                    continue
                victims, self.unstopped = self.unstopped, []
            for container in victims:
                try:
                    self._stop_task(container)
                except Exception:  # the stopper outlives one stop that went wrong
                    log.exception("stopping container pid %d failed", container.proc.pid)

    def _stop_container(self, session_id: str) -> None:
        with self.lock:
            container = self.containers.pop(session_id, None)
        if container is not None:
            self._stop_task(container)

    def stop(self, session_id: str, drain: bool = False) -> None:
        """Stop a session's container and stop caring for it (delete, idle, expiry).

        ``drain`` is the defect billed-after-delete: the container is set to drain instead of stopped, and the drain
        never ends; the process runs on (an ECS task billed after its session's delete) until the platform stops."""
        if self.settings.has("slow-at-sustained-rate") and session_id in self.wanted:
            with self.lock:
                self.recent_stops.append(time.monotonic())
        self._forget(session_id)
        if drain:
            with self.lock:
                container = self.containers.pop(session_id, None)
                if container is not None:
                    self.draining.add(container.proc.pid)
            if container is not None:
                self._lose_track(container.proc)  # killed only when the platform shuts down
        else:
            self._stop_container(session_id)
        with self.mesh_lock:
            if self.settings.has("mesh-hop-leak"):  # the defect: the hop outlives its session
                return
            if self.mesh and self.mesh_ports.pop(session_id, None) is not None:
                with contextlib.suppress(ToxiproxyError):
                    self.mesh.delete_proxy(f"mesh-{session_id}")

    def _route(self, session_id: str, port: int) -> int:
        """Put the session's service-mesh hop (a fault-proxy proxy named ``mesh-<sessionId>``) in front of its
        container. The hop keeps its port across restarts, like a service-discovery name, so faults on it stay."""
        if self.mesh is None:
            return port
        upstream = f"127.0.0.1:{port}"
        with self.mesh_lock:
            try:
                if session_id in self.mesh_ports:
                    self.mesh.update_proxy(f"mesh-{session_id}", upstream=upstream)
                else:
                    created = self.mesh.create_proxy(f"mesh-{session_id}", "127.0.0.1:0", upstream)
                    self.mesh_ports[session_id] = int(created["listen"].rsplit(":", 1)[1])
                return self.mesh_ports[session_id]
            except ToxiproxyError as exc:
                log.warning("session %s: no service-mesh hop (%s); routing straight to the container", session_id, exc)
                return port

    def container_port(self, session_id: str) -> int | None:
        with self.lock:
            container = self.containers.get(session_id)
            if container and container.ready and not container.stopping:
                return container.route_port or container.port
            return None

    def touch(self, session_id: str) -> None:
        wanted = self.wanted.get(session_id)
        if wanted is not None:
            wanted.last_activity = clock.now()

    def _lose_track(self, proc: subprocess.Popen[bytes]) -> None:
        """What a defect does: the runtime forgets a process it started (it is only reaped, never stopped)."""
        with self.lock:
            self.owned.pop(proc.pid, None)
            self.leaked.append(proc)

    def draining_pids(self) -> set[int]:
        """Containers the runtime says it is draining (defect billed-after-delete): the reaper leaves them alone."""
        with self.lock:
            return {proc.pid for proc in self.leaked if proc.pid in self.draining and proc.poll() is None}

    def owned_pids(self) -> set[int]:
        """Every agent process this runtime started and still looks after (pool, starting, running)."""
        with self.lock:
            return {pid for pid, proc in self.owned.items() if proc.poll() is None}

    def tracked_pids(self) -> dict[str, int]:
        with self.lock:
            return {sid: c.proc.pid for sid, c in self.containers.items()}

    # ----- warm pool -----------------------------------------------------------------------------------------
    def _pool_loop(self) -> None:
        while not self.stopped.wait(0.05):
            if not self.control_plane.available():  # a new agent is a RunTask: the pool waits for ECS
                continue
            with self.lock:
                missing = self.settings.warm_pool_size - len(self.pool) - self.pool_starting
                if missing <= 0:
                    continue
                self.pool_starting += 1
            try:
                if self.stopped.wait(self.settings.cold_start_delay):  # the pool's image pull
                    return
                container = self._spawn("-", "-", "", self.settings.app_init_delay)
                self._await_ready(container, time.monotonic() + self.settings.start_timeout)
                with self.lock:
                    self.pool.append(container)
            except (StartFailed, OSError) as exc:
                log.warning("warm-pool agent failed to start: %s", exc)
            finally:
                with self.lock:
                    self.pool_starting -= 1

    # ----- auto-scaling (Application Auto Scaling on the service's desired count) ----------------------------
    def _scale_loop(self) -> None:
        while not self.stopped.wait(0.1):
            if not self.control_plane.available():  # a new desired count is an UpdateService call: it waits for ECS
                continue
            now = time.monotonic()
            with self.wake:
                desired = len(self.wanted)
                s = self.settings
                if desired > self.capacity and self.capacity < s.max_capacity and not s.has("no-scale-out"):
                    self._surplus_since = None
                    self._demand_since = self._demand_since or now
                    if now - self._demand_since >= s.scale_out_delay:
                        self._scale(min(self.capacity + s.scale_out_step, s.max_capacity), desired, "scale-out")
                        self._demand_since = now
                elif desired < self.capacity - s.scale_out_step and self.capacity > s.min_capacity:
                    self._demand_since = None
                    self._surplus_since = self._surplus_since or now
                    if now - self._surplus_since >= s.scale_in_delay:
                        target = max(self.capacity - s.scale_out_step, s.min_capacity, desired)
                        if s.has("scale-in-below-load"):  # the defect: two steps down, whatever still runs
                            target = max(self.capacity - 2 * s.scale_out_step, s.min_capacity)
                        self._scale(target, desired, "scale-in")
                        self._surplus_since = now
                else:
                    self._demand_since = self._surplus_since = None

    def _scale(self, target: int, desired: int, kind: str) -> None:
        self.activities.append(
            {"time": clock.now(), "kind": kind, "from": self.capacity, "to": target, "desired": desired}
        )
        log.info("%s: capacity %d -> %d (desired %d)", kind, self.capacity, target, desired)
        self.capacity = target
        self.wake.notify_all()
