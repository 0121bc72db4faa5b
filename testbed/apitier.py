"""The API tier: API targets behind the load balancer, kept running as an ECS service and its ALB would be.

The platform's main loop calls :meth:`ApiTier.supervise` twice a second: a target process that exited is replaced
by a new one (a new task: new id, new port) and the load balancer's registrations are updated (as ECS deregisters a
stopped task and registers its replacement); a load balancer that exited is started again on the same ports (the
ALB's DNS name does not change when AWS replaces a node). ``run/api-tier.json`` says which processes are which.

With the AWS face (``tasks``: the platform's ECS task registry) every target is also an ECS task of the API service
(``service``, task definition family ``api``), so the suite finds, stops and black-holes API targets through ECS, ELBv2
and FIS as on AWS: a target's task is created before its process starts and is RUNNING and healthy once the target is
ready; it is STOPPED when its process exits, and the replacement is a new task. When ECS is asked to stop a task
(StopTask, FIS ``aws:ecs:stop-task``) its target is deregistered at once (``draining``), as ECS deregisters a
service's task from its target groups before it stops it (ECS developer guide, "Amazon ECS task lifecycle",
DEACTIVATING); the draining target leaves with its replacement (no deregistration delay here).
"""

from __future__ import annotations

import json
import logging
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from testbed.config import Settings

if TYPE_CHECKING:
    from testbed.awsface.tasks import TaskRegistry

log = logging.getLogger("testbed.apitier")
Spawn = Callable[..., subprocess.Popen[bytes]]
WaitReady = Callable[[Path, subprocess.Popen[bytes], float], dict[str, Any]]
API_SERVICE = "api-service"  # the API tier's ECS service (AWS face)
API_FAMILY = "api"  # its task definition family
API_CONTAINER = "api"  # its essential container
API_CONTAINER_PORT = 8080  # the port its task definition maps; each target here listens on a port of its own


class ApiTier:
    def __init__(
        self,
        settings: Settings,
        run_dir: Path,
        spawn: Spawn,
        wait_ready: WaitReady,
        core_port: int,
        tasks: TaskRegistry | None = None,
        service: str = "",
    ) -> None:
        self.settings = settings
        self.tasks = tasks
        self.service = service
        self._lock = threading.Lock()
        self.task_arns: dict[str, str] = {}  # target id -> its ECS task (with the AWS face)
        self.draining: set[str] = set()  # targets whose task ECS is stopping: deregistered, no new requests
        self.run_dir = run_dir
        self.spawn = spawn
        self.wait_ready = wait_ready
        self.core_port = core_port
        self.targets: dict[str, tuple[subprocess.Popen[bytes], int]] = {}  # id -> (process, port)
        self.balancer: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.admin_port = 0
        self._serial = 0
        self.replaced: list[dict[str, Any]] = []  # what supervision did: the suite reads it to time recoveries

    # ----- start ------------------------------------------------------------------------------------------
    def start(self) -> None:
        for _ in range(self.settings.api_targets):
            self._start_target()
        self._start_balancer()

    def _start_target(self) -> str:
        self._serial += 1
        ident = f"api-{self._serial}"
        ready = self.run_dir / f"{ident}.json"
        task = None
        if self.tasks is not None:  # the service scheduler creates the task, then its container starts
            task = self.tasks.new_task(
                service=self.service, family=API_FAMILY, container_name=API_CONTAINER, container_port=API_CONTAINER_PORT
            )
        proc = self.spawn("-m", "testbed.apitarget", "--upstream", str(self.core_port), "--ready-file", str(ready))
        try:
            port = self.wait_ready(ready, proc, time.monotonic() + 15)["port"]
        except BaseException:
            if task is not None and self.tasks is not None:
                self.tasks.forget_unstarted(task.arn, "Task failed to start")
            raise
        if task is not None and self.tasks is not None:
            self.tasks.spawned(task.arn, None, proc, "", host_port=port)
            self.tasks.ready(proc.pid)
            with self._lock:
                self.task_arns[ident] = task.arn
        self.targets[ident] = (proc, port)
        return ident

    def _registrations(self) -> list[dict[str, Any]]:
        return [
            {"id": ident, "port": port, "pid": proc.pid, **({"draining": True} if ident in self.draining else {})}
            for ident, (proc, port) in self.targets.items()
        ]

    # ----- what the AWS face asks -------------------------------------------------------------------------
    def target_of_task(self, task_arn: str) -> str | None:
        """The id of the target whose ECS task is ``task_arn`` (None: not a task of the API tier)."""
        with self._lock:
            return next((ident for ident, arn in self.task_arns.items() if arn == task_arn), None)

    def target_health(self) -> list[dict[str, Any]] | None:
        """The load balancer's view of its targets (``GET /targets``); None when it does not answer."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/targets", timeout=2) as response:
                return list(json.loads(response.read())["targets"])
        except (OSError, ValueError, KeyError):
            return None

    def blackhole(self, ident: str, on: bool) -> bool:
        """Black-holes (or frees) what the load balancer sends target ``ident``; False when it is not registered."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.admin_port}/targets/{ident}/blackhole",
            data=json.dumps({"on": on}).encode(),
            method="PUT",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                response.read()
            return True
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return False
            raise

    def _start_balancer(self) -> None:
        ready = self.run_dir / "loadbalancer.json"
        ready.unlink(missing_ok=True)
        s = self.settings
        args = [
            "-m",
            "testbed.loadbalancer",
            "--port",
            str(self.port),
            "--admin-port",
            str(self.admin_port),
            "--ready-file",
            str(ready),
            "--targets",
            json.dumps(self._registrations()),
            "--health-interval",
            str(s.lb_health_interval),
            "--health-timeout",
            str(s.lb_health_timeout),
            "--healthy-threshold",
            str(s.lb_healthy_threshold),
            "--unhealthy-threshold",
            str(s.lb_unhealthy_threshold),
            "--target-timeout",
            str(s.lb_target_timeout),
        ]
        if s.has("lb-no-health-check"):
            args.append("--no-health")
        self.balancer = self.spawn(*args)
        found = self.wait_ready(ready, self.balancer, time.monotonic() + 15)
        self.port, self.admin_port = found["port"], found["admin_port"]
        self._write_state()

    def _write_state(self) -> None:
        state = {
            "loadBalancer": {"pid": self.balancer.pid if self.balancer else None, "port": self.port},
            "targets": self._registrations(),
            "replaced": self.replaced[-50:],
        }
        tmp = self.run_dir / "api-tier.tmp"
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.run_dir / "api-tier.json")

    # ----- supervise --------------------------------------------------------------------------------------
    def supervise(self) -> None:
        """Replace what died; never raises (a failed replacement is logged and tried again next time)."""
        try:
            self._supervise()
        except Exception:
            log.exception("API tier supervision failed; trying again")

    def _supervise(self) -> None:
        changed = self._drain_stopping()
        for ident, (proc, _) in list(self.targets.items()):
            if proc.poll() is None:
                continue
            if self.settings.has("api-target-not-replaced"):
                continue  # the defect: the dead target stays registered and is never replaced
            del self.targets[ident]
            self.draining.discard(ident)
            with self._lock:
                self.task_arns.pop(ident, None)
            new = self._start_target()
            log.warning("API target %s exited with %s; replaced by %s", ident, proc.returncode, new)
            self.replaced.append({"kind": "api-target", "old": ident, "new": new, "time": time.time()})
            changed = True
        lb_died = self.balancer is not None and self.balancer.poll() is not None
        if lb_died and not self.settings.has("lb-not-restarted"):  # the defect leaves it dead
            code = self.balancer.returncode if self.balancer else None
            self.replaced.append({"kind": "load-balancer", "time": time.time()})
            self._start_balancer()  # with the current registrations, on the same ports; writes the state
            log.warning("load balancer exited with %s; started again on port %s", code, self.port)
            changed = False
        if changed and self.balancer is not None and self.balancer.poll() is None:
            self._register()
            self._write_state()

    def _drain_stopping(self) -> bool:
        """Deregister (drain) every target whose ECS task is being stopped; True when one was."""
        if self.tasks is None:
            return False
        with self._lock:
            arns = dict(self.task_arns)
        changed = False
        for ident, arn in arns.items():
            task = self.tasks.find(arn)
            stopping = task is not None and task.desired_status == "STOPPED"
            if stopping and ident in self.targets and ident not in self.draining:
                self.draining.add(ident)
                log.info("API target %s: its task %s is stopping; deregistered (draining)", ident, arn)
                changed = True
        return changed

    def _register(self) -> None:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.admin_port}/targets",
            data=json.dumps({"targets": self._registrations()}).encode(),
            method="PUT",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=2) as response:
            response.read()
