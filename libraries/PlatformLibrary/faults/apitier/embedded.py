"""The embedded platform's API tier: target processes behind ``testbed/loadbalancer.py``.

The load balancer's admin port answers ``GET /targets`` as ELBv2's ``DescribeTargetHealth`` does. A target is killed
(SIGKILL) or frozen (SIGSTOP, reverted with SIGCONT) as a process of the platform's own process group, identified by
its command line and the platform's instance, so a stale pid never hits anything else. These faults hit the whole
platform: the injector lets them run on a private platform or with the platform held exclusively.
"""

from __future__ import annotations

import os
import signal
from typing import Any

import psutil
import requests

from ...core.base import LibraryContext
from ...targets.embedded import faults as local_faults
from ..injector import FaultInjector
from ..ledger import ChaosError
from .base import ApiTier, check_fault_name


class EmbeddedApiTier(ApiTier):
    name = "embedded load balancer"

    def __init__(self, ctx: LibraryContext, injector: FaultInjector):
        self.ctx = ctx
        self.injector = injector

    @property
    def _timeout(self) -> float:
        return self.ctx.profile.seconds("HTTP_TIMEOUT")

    def _admin(self) -> dict[str, Any]:
        try:
            answer = requests.get(f"{self.ctx.endpoints.get('LOAD_BALANCER_ADMIN_URL')}/targets", timeout=self._timeout)
            answer.raise_for_status()
        except requests.RequestException as error:
            raise AssertionError(f"The load balancer's admin port did not answer: {error}") from None
        return answer.json()

    def targets(self) -> list[dict[str, Any]]:
        return list(self._admin()["targets"])

    def balancer_pid(self) -> int:
        return int(self._admin()["pid"])

    def can_fault(self, target: dict[str, Any]) -> bool:
        return bool(target.get("pid"))

    def check(self, fault: str) -> None:
        check_fault_name(fault)
        self.injector.allow(f"inject an API-tier fault ({fault})")

    def platform_process(self, pid: int | None, module: str) -> psutil.Process:
        """The process ``pid`` if it is this platform's ``module`` (checked by command line and instance)."""
        instance = str(self.ctx.endpoints.get("PLATFORM_INSTANCE"))
        try:
            proc = psutil.Process(int(pid or 0))
            if module in " ".join(proc.cmdline()) and proc.environ().get("TESTBED_INSTANCE") == instance:
                return proc
        except (psutil.Error, ValueError):
            pass
        raise ChaosError(f"pid {pid} is not this platform's {module} process (instance {instance}); nothing was hit.")

    def kill(self, target: dict[str, Any]) -> None:
        proc = self.platform_process(target.get("pid"), "testbed.apitarget")
        entry = self.injector.record("api-target-kill", f"SIGKILL API target {target['id']} (pid {proc.pid})", [])
        proc.send_signal(signal.SIGKILL)
        self.injector.activate(entry)
        self.injector.ledger.remove(entry["id"])  # nothing to undo: a kill is over once it is done

    def hang(self, target: dict[str, Any]) -> str:
        proc = self.platform_process(target.get("pid"), "testbed.apitarget")
        step = {"do": "resume-process", "pid": proc.pid, "startTime": local_faults.process_start_time(proc.pid)}
        entry = self.injector.record("api-target-freeze", f"SIGSTOP API target {target['id']} (pid {proc.pid})", [step])
        try:
            os.kill(proc.pid, signal.SIGSTOP)
        except OSError as error:
            self.injector.undo_now(entry)
            raise ChaosError(f"Freezing API target {target['id']} failed: {error}") from None
        return self.injector.activate(entry)
