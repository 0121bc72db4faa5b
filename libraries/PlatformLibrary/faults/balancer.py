"""The load balancer and its API targets under faults: a target dies or hangs, the load balancer itself fails.

One keyword surface on both targets; where the targets are and how a fault reaches them is the API tier backend's
(``faults/apitier``), chosen in one place (``create_api_tier``): on the embedded platform target processes behind
``testbed/loadbalancer.py`` (SIGKILL, SIGSTOP), on AWS the tasks of the API's ECS service behind its ALB target group
(FIS ``aws:ecs:stop-task``, ``aws:ecs:task-network-blackhole-port``). These faults hit the whole platform (on AWS the
deployment): the injector's deployment guard lets them run on a private platform, or with the platform held
exclusively (and on AWS with ``${CHAOS_SCOPE}`` ``deployment``). The load balancer itself fails only on the
embedded platform: an ALB node cannot be killed.
"""

from __future__ import annotations

import signal
import time
from datetime import timedelta
from typing import Any, Literal

import requests
from robot.api.deco import keyword

from ..core.base import LibraryComponent, LibraryContext
from ..core.http_client import PlatformApiClient
from ..core.profile import format_seconds
from ..core.waiting import wait_until
from ..sessions.api import SessionRef
from .apitier import OUT_OF_ROTATION, ApiTier, check_fault_name, create_api_tier
from .apitier.embedded import EmbeddedApiTier
from .fis import FisKeywords
from .injector import FaultInjector
from .ledger import ChaosError


class LoadBalancerKeywords(LibraryComponent):
    """Faults on the API tier (targets, load balancer) and what the API must still do under them."""

    def __init__(self, ctx: LibraryContext, injector: FaultInjector, fis: FisKeywords):
        super().__init__(ctx)
        self.injector = injector
        self.fis = fis
        self._tiers: dict[str, ApiTier] = {}

    @property
    def tier(self) -> ApiTier:
        """The API tier backend of the profile's target (created once per target)."""
        target = self.profile.target
        if target not in self._tiers:
            self._tiers[target] = create_api_tier(target, self.ctx, self.injector, self.fis)
        return self._tiers[target]

    # ------------------------------------------------------------------ reading
    @keyword(tags=["load-balancer"])
    def get_load_balancer_targets(self) -> list[dict[str, Any]]:
        """The registered API targets with their health, as ``DescribeTargetHealth`` tells them.

        Each target: ``id``, ``port``, ``state`` (``initial``, ``healthy``, ``unhealthy``, ``draining`` ...),
        ``reason``; on the embedded platform also ``pid``, ``requests``, ``badGateway`` (502s), ``gatewayTimeout``
        (504s); on AWS ``address`` and ``task`` (the ARN of the API service's task behind it), and ``id`` is
        ``<address>:<port>``.
        """
        return self.tier.targets()

    @keyword(tags=["load-balancer"])
    def pick_healthy_api_target(self) -> str:
        """The id of an API target the load balancer reports healthy and a fault can reach (fails when none is)."""
        return str(self.tier.pick("any healthy")["id"])

    @keyword(tags=["load-balancer", "safety"])
    def api_tier_fault_should_be_possible(self, fault: Literal["kill", "hang"]) -> None:
        """Checks, before a test creates anything, that the API-tier fault ``fault`` (``kill`` or ``hang``) can run.

        Skips the test with the reason when the profile does not allow it (chaos refused; on AWS also
        ``${CHAOS_SCOPE}`` not ``deployment``, the deployment's API service not named (``${API_ECS_SERVICE}``), no FIS
        role or stop alarm), and fails naming what is wrong when a named thing is not usable (no such service or
        alarm, a target group it cannot tell, FIS's prerequisites missing from the API task definition). Holding the
        deployment exclusively is checked when the fault is injected (take it after this check).
        """
        self.tier.check(check_fault_name(fault))
        self.info(f"An API-tier fault ({fault}) can run on the {self.tier.name}.")

    # ------------------------------------------------------------------ faults
    @keyword(tags=["chaos", "load-balancer"])
    def kill_api_target(self, name: str = "any healthy") -> str:
        """One API target dies (``name``: ``any healthy`` or its id); returns its id.

        Embedded platform: SIGKILL to the target process. AWS: FIS ``aws:ecs:stop-task`` on its task (ECS
        deregisters the target, stops the task; the service must start a replacement). The platform must replace
        the target (`Wait Until Load Balancer Has Healthy Targets`). Recorded in the fault ledger (on AWS with the
        experiment's StopExperiment as its revert step).
        """
        self.injector.guard_deployment("Killing an API target")
        chosen = self.tier.pick(name)
        self.tier.kill(chosen)
        return str(chosen["id"])

    @keyword(tags=["chaos", "load-balancer"])
    def hang_api_target(self, name: str = "any healthy") -> str:
        """One API target stops answering, as a hung task does; returns the fault's id.

        Embedded platform: SIGSTOP to the target process (it keeps its connections, answers nothing; reverted with
        SIGCONT). AWS: FIS ``aws:ecs:task-network-blackhole-port`` on the API container's port of its task, ingress
        (the ALB's health checks and requests get no answer; reverted by stopping the experiment, bounded by
        ``${FIS_FAULT_DURATION}``). Reverted by `Revert Fault`, `Revert All Faults` or the test's fault clean-up.

        Example:
        | ${target} = | Pick Healthy API Target |
        | ${fault} = | Hang API Target | ${target} |
        """
        self.injector.guard_deployment("Making an API target hang")
        return self.tier.hang(self.tier.pick(name))

    @keyword(tags=["embedded-only", "chaos", "load-balancer"])
    def kill_load_balancer(self) -> None:
        """SIGKILLs the load balancer in front of the API: every client connection to the API fails until the
        platform brings it back on the same address (`Wait Until The API Answers Through The Load Balancer`)."""
        self.injector.guard_whole_platform("Killing the load balancer")
        tier = self.tier
        if not isinstance(tier, EmbeddedApiTier):  # the keyword is embedded-only: gated before it runs
            raise ChaosError("Only the embedded platform's load balancer is a process that can be killed.")
        proc = tier.platform_process(tier.balancer_pid(), "testbed.loadbalancer")
        entry = self.injector.record("load-balancer-kill", f"SIGKILL the load balancer (pid {proc.pid})", [])
        proc.send_signal(signal.SIGKILL)
        self.injector.activate(entry)
        self.injector.ledger.remove(entry["id"])

    # ------------------------------------------------------------------ waiting
    def _poll(self) -> float:
        return self.profile.seconds("POLL_INTERVAL")

    @keyword(tags=["load-balancer", "wait"])
    def wait_until_api_target_leaves_rotation(self, target: str, timeout: timedelta) -> float:
        """Waits until the load balancer takes ``target`` out of rotation (``unhealthy``, ``draining``, or gone);
        returns the seconds it took.

        Fails naming the promise: a target that fails its health checks leaves rotation within the health check's
        interval times its unhealthy threshold.
        """
        last: list[Any] = [None]

        def probe() -> bool | None:
            found = next((t for t in self.get_load_balancer_targets() if t["id"] == target), None)
            last[0] = found
            return True if found is None or found["state"] in OUT_OF_ROTATION else None

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

    @keyword(tags=["load-balancer", "wait"])
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

    @keyword(tags=["load-balancer", "wait"])
    def wait_until_the_api_answers_through_the_load_balancer(self, timeout: timedelta) -> float:
        """Polls ``GET /health`` at the API's public address until it answers; returns the seconds it took.

        Fails naming the promise: the API is back on its address after its load balancer failed.
        """
        last: list[str] = ["no answer yet"]

        def probe() -> bool | None:  # through the one API client: the run's auth, TLS and contract mapping
            try:
                answer = self.ctx.api.request("GET", "/health", timeout=min(1.0, self.http_timeout))
            except requests.RequestException as error:
                last[0] = type(error).__name__
                return None
            last[0] = answer.describe()
            return True if answer.status == 200 else None

        waited = wait_until(
            probe,
            timeout.total_seconds(),
            self._poll(),
            lambda: f"The API did not answer on its address again after its load balancer failed (last: {last[0]})",
        )
        self.info(f"The API answered through the load balancer again after {format_seconds(waited.seconds)}.")
        return waited.seconds

    # ------------------------------------------------------------------ checks
    @keyword(tags=["load-balancer", "assertion"])
    def every_api_request_should_be_answered(
        self, session: SessionRef, count: int = 20, timeout: timedelta = timedelta(seconds=1)
    ) -> None:
        """Reads ``session`` ``count`` times through the load balancer, one after another; each must answer 200
        within ``timeout``. Fails naming the promise: only healthy targets get requests."""
        path = PlatformApiClient.session_path(self.session_id_of(session))
        failures: list[str] = []
        started = time.monotonic()
        for number in range(1, int(count) + 1):  # through the one API client: auth, TLS, contract mapping
            try:
                answer = self.ctx.api.request("GET", path, timeout=timeout.total_seconds())
                if answer.status != 200:
                    failures.append(f"#{number}: {answer.describe()[:120]}")
            except requests.RequestException as error:
                failures.append(f"#{number}: {type(error).__name__} after {format_seconds(timeout.total_seconds())}")
        if failures:
            raise AssertionError(
                f"{len(failures)} of {count} API requests through the load balancer failed; it must route only to "
                f"healthy targets: {'; '.join(failures[:5])}"
            )
        self.info(f"{count} of {count} requests answered in {format_seconds(time.monotonic() - started)}.")
