"""The load balancer and its API targets under faults: a target dies or hangs, the load balancer itself fails.

The embedded platform's API is an ALB-like load balancer in front of API targets (``testbed/loadbalancer.py``,
``testbed/apitier.py``); its admin port answers as ELBv2's ``DescribeTargetHealth`` does. A target or the load
balancer is killed or frozen as a process of the platform's own process group, identified by its command line, so a
stale pid never hits anything else. These faults hit the whole platform: they run on a private platform only.
"""

from __future__ import annotations

import os
import signal
import time
from datetime import timedelta
from typing import Any

import psutil
import requests
from robot.api.deco import keyword

from ..core.base import LibraryComponent, LibraryContext
from ..core.profile import format_seconds
from ..core.waiting import wait_until
from ..sessions.api import SessionRef
from ..targets.embedded import faults as local_faults
from .injector import FaultInjector
from .ledger import ChaosError


class LoadBalancerKeywords(LibraryComponent):
    """Faults on the API tier (targets, load balancer) and what the API must still do under them."""

    def __init__(self, ctx: LibraryContext, injector: FaultInjector):
        super().__init__(ctx)
        self.injector = injector

    # ------------------------------------------------------------------ reading
    def _admin(self) -> str:
        return str(self.endpoint("LOAD_BALANCER_ADMIN_URL"))

    @keyword(tags=["embedded-only", "load-balancer"])
    def get_load_balancer_targets(self) -> list[dict[str, Any]]:
        """The registered API targets with their health, as ``DescribeTargetHealth`` tells them.

        Each target: ``id``, ``port``, ``pid``, ``state`` (``initial``, ``healthy``, ``unhealthy``), ``reason``,
        ``requests``, ``badGateway`` (502s), ``gatewayTimeout`` (504s).
        """
        try:
            answer = requests.get(f"{self._admin()}/targets", timeout=self.http_timeout)
            answer.raise_for_status()
        except requests.RequestException as error:
            raise AssertionError(f"The load balancer's admin port did not answer: {error}") from None
        return answer.json()["targets"]

    def _target(self, target: str) -> dict[str, Any]:
        targets = self.get_load_balancer_targets()
        if target == "any healthy":
            found = next((t for t in targets if t["state"] == "healthy"), None)
        else:
            found = next((t for t in targets if t["id"] == target), None)
        if found is None:
            known = ", ".join(f"{t['id']} ({t['state']})" for t in targets) or "none"
            raise ChaosError(f"No API target '{target}' behind the load balancer; registered: {known}.")
        return found

    def _platform_process(self, pid: int | None, module: str) -> psutil.Process:
        """The process ``pid`` if it is this platform's ``module`` (checked by command line and instance)."""
        instance = str(self.endpoint("PLATFORM_INSTANCE"))
        try:
            proc = psutil.Process(int(pid or 0))
            if module in " ".join(proc.cmdline()) and proc.environ().get("TESTBED_INSTANCE") == instance:
                return proc
        except (psutil.Error, ValueError):
            pass
        raise ChaosError(f"pid {pid} is not this platform's {module} process (instance {instance}); nothing was hit.")

    def _balancer_pid(self) -> int:
        answer = requests.get(f"{self._admin()}/targets", timeout=self.http_timeout)
        return int(answer.json()["pid"])

    # ------------------------------------------------------------------ faults
    @keyword(tags=["embedded-only", "chaos", "load-balancer"])
    def kill_api_target(self, name: str = "any healthy") -> str:
        """SIGKILLs one API target (``name``: ``any healthy`` or its id, e.g. ``api-2``) and returns its id.

        Nothing is left to revert: the platform must replace the target (`Wait Until Load Balancer Has Healthy
        Targets`). The kill is written to the fault ledger all the same, so the log and the ledger show it.
        """
        self.injector.guard_whole_platform("Killing an API target")
        chosen = self._target(name)
        proc = self._platform_process(chosen.get("pid"), "testbed.apitarget")
        entry = self.injector.record("api-target-kill", f"SIGKILL API target {chosen['id']} (pid {proc.pid})", [])
        proc.send_signal(signal.SIGKILL)
        self.injector.activate(entry)
        self.injector.ledger.remove(entry["id"])  # nothing to undo: a kill is over once it is done
        return str(chosen["id"])

    @keyword(tags=["embedded-only", "load-balancer"])
    def pick_healthy_api_target(self) -> str:
        """The id of an API target the load balancer reports healthy (fails when there is none)."""
        return str(self._target("any healthy")["id"])

    @keyword(tags=["embedded-only", "chaos", "load-balancer"])
    def freeze_api_target(self, name: str = "any healthy") -> str:
        """SIGSTOPs one API target: it keeps its connections but answers nothing, as a hung task does.

        Returns the fault's id. Reverted (SIGCONT) by `Revert Fault`, `Revert All Faults` or the test's fault
        clean-up.

        Example:
        | ${target} = | Pick Healthy API Target |
        | ${fault} = | Freeze API Target | ${target} |
        """
        self.injector.guard_whole_platform("Freezing an API target")
        chosen = self._target(name)
        proc = self._platform_process(chosen.get("pid"), "testbed.apitarget")
        step = {"do": "resume-process", "pid": proc.pid, "startTime": local_faults.process_start_time(proc.pid)}
        entry = self.injector.record("api-target-freeze", f"SIGSTOP API target {chosen['id']} (pid {proc.pid})", [step])
        try:
            os.kill(proc.pid, signal.SIGSTOP)
        except OSError as error:
            self.injector.undo_now(entry)
            raise ChaosError(f"Freezing API target {chosen['id']} failed: {error}") from None
        return self.injector.activate(entry)

    @keyword(tags=["embedded-only", "chaos", "load-balancer"])
    def kill_load_balancer(self) -> None:
        """SIGKILLs the load balancer in front of the API: every client connection to the API fails until the
        platform brings it back on the same address (`Wait Until The API Answers Through The Load Balancer`)."""
        self.injector.guard_whole_platform("Killing the load balancer")
        proc = self._platform_process(self._balancer_pid(), "testbed.loadbalancer")
        entry = self.injector.record("load-balancer-kill", f"SIGKILL the load balancer (pid {proc.pid})", [])
        proc.send_signal(signal.SIGKILL)
        self.injector.activate(entry)
        self.injector.ledger.remove(entry["id"])

    # ------------------------------------------------------------------ waiting
    def _poll(self) -> float:
        return self.profile.seconds("POLL_INTERVAL")

    @keyword(tags=["embedded-only", "load-balancer", "wait"])
    def wait_until_api_target_leaves_rotation(self, target: str, timeout: timedelta) -> float:
        """Waits until the load balancer reports ``target`` unhealthy (or gone); returns the seconds it took.

        Fails naming the promise: a target that fails its health checks leaves rotation within the health check's
        interval times its unhealthy threshold.
        """
        last: list[Any] = [None]

        def probe() -> bool | None:
            found = next((t for t in self.get_load_balancer_targets() if t["id"] == target), None)
            last[0] = found
            return True if found is None or found["state"] == "unhealthy" else None

        waited = wait_until(
            probe,
            timeout.total_seconds(),
            self._poll(),
            lambda: (
                f"API target {target} failing its health checks did not leave rotation: the load balancer "
                f"still reports it {last[0]['state'] if last[0] else 'gone'}"
            ),
        )
        self.info(f"API target {target} left rotation after {format_seconds(waited.seconds)}.")
        return waited.seconds

    @keyword(tags=["embedded-only", "load-balancer", "wait"])
    def wait_until_load_balancer_has_healthy_targets(self, count: int, timeout: timedelta) -> float:
        """Waits until ``count`` API targets are healthy and in rotation; returns the seconds it took.

        Fails naming the promise: a failed API target is replaced, so the API runs on its full count again.
        """
        seen: list[list[dict[str, Any]]] = [[]]

        def probe() -> bool | None:
            seen[0] = self.get_load_balancer_targets()
            return True if sum(t["state"] == "healthy" for t in seen[0]) >= count else None

        def describe() -> str:
            states = ", ".join(f"{t['id']} {t['state']}" for t in seen[0]) or "no target registered"
            healthy = sum(t["state"] == "healthy" for t in seen[0])
            return f"The platform did not restore its API to {count} healthy targets: {healthy} healthy ({states})"

        waited = wait_until(probe, timeout.total_seconds(), self._poll(), describe)
        self.info(f"{count} API targets healthy after {format_seconds(waited.seconds)}.")
        return waited.seconds

    @keyword(tags=["embedded-only", "load-balancer", "wait"])
    def wait_until_the_api_answers_through_the_load_balancer(self, timeout: timedelta) -> float:
        """Polls ``GET /health`` at the API's public address until it answers; returns the seconds it took.

        Fails naming the promise: the API is back on its address after its load balancer failed.
        """
        url = f"{self.endpoint('PLATFORM_API_URL')}/health"
        last: list[str] = ["no answer yet"]

        def probe() -> bool | None:
            try:
                requests.get(url, timeout=min(1.0, self.http_timeout)).raise_for_status()
                return True
            except requests.RequestException as error:
                last[0] = type(error).__name__
                return None

        waited = wait_until(
            probe,
            timeout.total_seconds(),
            self._poll(),
            lambda: f"The API did not answer on its address again after its load balancer failed (last: {last[0]})",
        )
        self.info(f"The API answered through the load balancer again after {format_seconds(waited.seconds)}.")
        return waited.seconds

    # ------------------------------------------------------------------ checks
    @keyword(tags=["embedded-only", "load-balancer", "assertion"])
    def every_api_request_should_be_answered(
        self, session: SessionRef, count: int = 20, timeout: timedelta = timedelta(seconds=1)
    ) -> None:
        """Reads ``session`` ``count`` times through the load balancer, one after another; each must answer 200
        within ``timeout``. Fails naming the promise: only healthy targets get requests."""
        url = f"{self.endpoint('PLATFORM_API_URL')}/sessions/{self.session_id_of(session)}"
        failures: list[str] = []
        started = time.monotonic()
        with requests.Session() as client:
            for number in range(1, int(count) + 1):
                try:
                    answer = client.get(url, timeout=timeout.total_seconds())
                    if answer.status_code != 200:
                        failures.append(f"#{number}: {answer.status_code} {answer.text[:80]}")
                except requests.RequestException as error:
                    failures.append(
                        f"#{number}: {type(error).__name__} after {format_seconds(timeout.total_seconds())}"
                    )
        if failures:
            raise AssertionError(
                f"{len(failures)} of {count} API requests through the load balancer failed; it must route only to "
                f"healthy targets: {'; '.join(failures[:5])}"
            )
        self.info(f"{count} of {count} requests answered in {format_seconds(time.monotonic() - started)}.")
