"""Cost keywords: what a session costs, priced from a dated AWS price file.

The pricing engine is :mod:`PlatformLibrary.aws.cost`; a session's billed time on AWS comes from its ECS
tasks (``EcsKeywords.get_session_task_usage``), on either target from the billed lifetimes of its containers
(``targets.billing``: ECS's record of each task, or the embedded platform's processes watched while they run).
"""

from __future__ import annotations

import time
from datetime import timedelta

from robot.api.deco import keyword

from ..aws.cost import (
    SessionUsage,
    fargate_rates,
    format_duration,
    load_pricing,
    profile_pricing_file,
    session_cost,
    typical_session_bill,
    typical_session_cost,
)
from ..core.base import LibraryComponent, LibraryContext
from ..core.billing import BilledTask
from ..core.profile import format_seconds
from ..core.waiting import WaitTimeout, wait_until
from ..sessions.api import PlatformApiKeywords, SessionRef
from ..targets.aws.keywords import EcsKeywords
from ..targets.billing import ContainerWatch
from ..targets.containers import ContainerKeywords


class CostKeywords(LibraryComponent):
    """Prices a session's usage (``Estimate Session Cost``), its ECS tasks' billed time (``Get Session Cost``), and
    measures a session's billed time on either target to price a typical session against the budget."""

    ROBOT_LISTENER_API_VERSION = 3

    def __init__(self, ctx: LibraryContext, ecs: EcsKeywords, api: PlatformApiKeywords, containers: ContainerKeywords):
        super().__init__(ctx)
        self.ecs = ecs
        self.api = api
        self.containers = containers
        self._watches: dict[str, ContainerWatch | None] = {}  # session id -> its watch (None: the runtime records)

    def end_test(self, data, result) -> None:
        """A watch never outlives its test (one that failed before `Wait Until Session Billing Ends`)."""
        watches, self._watches = self._watches, {}
        for watch in watches.values():
            if watch is not None:
                watch.stop()

    def _pricing(self) -> dict:
        return load_pricing(profile_pricing_file(self.profile))

    @keyword(tags=["cost"])
    def estimate_session_cost(
        self,
        task_seconds: float,
        vcpu: float = 1.0,
        memory_gb: float = 2.0,
        requests: int = 0,
        dynamodb_reads: float = 0,
        dynamodb_writes: float = 0,
        architecture: str = "linux_x86",
        day: str | None = None,
    ) -> dict:
        """Returns the cost of one session from its usage, with the prices valid on ``day`` (default today).

        Prices come from the profile's ``${PRICING_FILE}`` (default ``resources/pricing_aws.json``), a dated file.
        Result keys: ``total``, ``compute``, ``requests``, ``dynamodb``, ``currency``, ``pricesValidFrom``,
        ``usage``. ``requests`` are API requests through the ALB (priced as LCU-hours), ``dynamodb_reads`` and
        ``dynamodb_writes`` request units.
        """
        usage = SessionUsage(
            float(task_seconds),
            float(vcpu),
            float(memory_gb),
            int(requests),
            float(dynamodb_reads),
            float(dynamodb_writes),
            architecture,
        )
        cost = session_cost(usage, self._pricing(), day)
        self.info(f"Session cost {cost['total']:.6f} {cost['currency']} (prices from {cost['pricesValidFrom']}).")
        return cost

    @keyword(tags=["aws-only", "ecs", "cost"])
    def get_session_cost(
        self, session: SessionRef, requests: int = 0, dynamodb_reads: float = 0, dynamodb_writes: float = 0
    ) -> dict:
        """`Get Session Task Usage` priced with `Estimate Session Cost`; returns the cost with ``sessionId``.

        Example:
        | ${cost} = | Get Session Cost | ${SESSION} | requests=${request_count} |
        | Record Metric | session_cost | ${cost}[total] | unit=USD |
        """
        usage = self.ecs.get_session_task_usage(session)
        cost = self.estimate_session_cost(
            usage["taskSeconds"],
            usage["vcpu"],
            usage["memoryGb"],
            requests,
            dynamodb_reads,
            dynamodb_writes,
            usage["architecture"],
        )
        cost["sessionId"] = usage["sessionId"]
        cost["tasks"] = usage["tasks"]
        return cost

    # ------------------------------------------------------------------ measured billing, both targets
    @keyword(tags=["cost"])
    def watch_session_billing(self, session: SessionRef) -> None:
        """Starts measuring what the session's containers are billed for, until `Wait Until Session Billing Ends`.

        On AWS ECS records every task of the session (``pullStartedAt`` … ``stoppedAt``, kept about an hour after
        the stop), so this only looks once at the session's tasks (ECS drops a stopped task's tags; a task seen
        now stays tied to the session). On the embedded platform a thread polls the process table every
        ``${POLL_INTERVAL}``: each container the session has is billed from its process's create time until the
        first poll that finds the process gone (a container the platform stops listing as the session's, but whose
        process still runs, is still billed). Call it while the session's container runs, e.g. right after `Create
        Session`.

        Example:
        | ${session} = | Create Session |
        | Watch Session Billing | ${session} |
        """
        session_id = self.session_id_of(session)
        backend = self.containers.backend
        previous = self._watches.pop(session_id, None)
        if previous is not None:
            previous.stop()
        if backend.billed_tasks(session_id) is not None:
            self._watches[session_id] = None
            self.info(f"Billing of session {session_id}: {backend.name} records every task; read at the end.")
            return
        watch = ContainerWatch(backend, session_id, self.profile.seconds("POLL_INTERVAL"))
        self._watches[session_id] = watch
        self.info(f"Watching the containers of session {session_id} ({backend.name}): {len(watch.tasks())} now.")

    @keyword(tags=["cost", "wait"])
    def wait_until_session_billing_ends(self, session: SessionRef, timeout: timedelta | None = None) -> dict:
        """Waits until every container that served the deleted session has stopped; returns its measured billing.

        The deadline is ``timeout`` or ``${ORPHAN_GRACE_TIMEOUT}`` (past it a deleted session's container is an
        orphan). The keyword does not fail at the deadline: the billing it returns is then *open* (``open`` true, the
        running container billed until the deadline) and `Session Cost Should Be Within Budget` judges it. It fails
        when the session was not watched (`Watch Session Billing`), when this client did not create, see running
        and delete the session, or when no container of it was ever seen.

        Returns ``sessionId``, ``tasks`` (each ``task``, ``start``, ``end`` epoch seconds or ``None``,
        ``pullUnseen``), ``created``, ``running``, ``deleted`` (when the create was sent, ``RUNNING`` first seen,
        the delete sent), ``until`` (when the measurement ended), ``open``, ``source`` and ``waitedSeconds``.

        Example:
        | Delete Session | ${session} |
        | ${billing} = | Wait Until Session Billing Ends | ${session} |
        """
        session_id = self.session_id_of(session)
        if session_id not in self._watches:
            raise AssertionError(
                f"The billing of session {session_id} was not watched: call 'Watch Session Billing' while it runs."
            )
        moments = self.api.lifecycle_of(session_id)
        missing = [name for name in ("created", "running", "deleted") if name not in moments]
        if missing:
            raise AssertionError(
                f"Session {session_id} has no {', '.join(missing)} moment: create it with 'Create Session', wait with "
                "'Wait Until Session Is Running' and delete it with 'Delete Session' before pricing it."
            )
        watch = self._watches[session_id]
        backend = self.containers.backend
        deadline = timeout.total_seconds() if timeout is not None else self.profile.seconds("ORPHAN_GRACE_TIMEOUT")
        seen: dict[str, list[BilledTask]] = {"tasks": []}

        def probe():
            seen["tasks"] = watch.tasks() if watch is not None else (backend.billed_tasks(session_id) or [])
            ended = watch.ended() if watch is not None else all(t.end is not None for t in seen["tasks"])
            return True if seen["tasks"] and ended else None

        started = time.monotonic()
        try:
            waited: float | None = wait_until(
                probe,
                deadline,
                self.profile.seconds("POLL_INTERVAL"),
                lambda: f"Session {session_id} is still billed",
            ).seconds
        except WaitTimeout:
            waited = None
        until = time.time()
        if watch is not None:
            watch.poll()
            watch.stop()
            seen["tasks"] = watch.tasks()
            self._watches.pop(session_id, None)
        else:
            seen["tasks"] = backend.billed_tasks(session_id) or []
        tasks = seen["tasks"]
        if not tasks:
            problem = f" ({watch.error})" if watch is not None and watch.error else ""
            raise AssertionError(f"No container of session {session_id} was ever seen{problem}: nothing to price.")
        billing = {
            "sessionId": session_id,
            "tasks": [{"task": t.task, "start": t.start, "end": t.end, "pullUnseen": t.pull_unseen} for t in tasks],
            **moments,
            "until": until,
            "open": any(t.end is None for t in tasks),
            "source": "process table, watched" if watch is not None else f"{backend.name}, as recorded",
            "waitedSeconds": round(waited if waited is not None else time.monotonic() - started, 3),
        }
        if billing["open"]:
            self.info(
                f"Session {session_id} was still billed {format_seconds(deadline)} after the wait began: "
                f"{sum(t.end is None for t in tasks)} of {len(tasks)} container(s) still running."
            )
        else:
            last = max(t.end for t in tasks if t.end is not None)
            tail = format_seconds(last - moments["deleted"])
            self.info(f"Billing of session {session_id} ended {tail} after its delete.")
        return billing

    @keyword(tags=["cost"])
    def get_typical_session_cost(
        self,
        billing: dict,
        typical: timedelta | None = None,
        vcpu: float | None = None,
        memory_gb: float | None = None,
        budget: float | None = None,
    ) -> dict:
        """Prices a typical session from a measured one (`Wait Until Session Billing Ends`) and judges the budget.

        The measured session's active use (``RUNNING`` seen until the delete sent) becomes ``typical`` (default
        ``${TYPICAL_SESSION_DURATION}``); everything else it was billed stays as measured: the start-up, the tail
        after the delete (open: until the measurement ended), a warm-pool wait, other tasks. Each task is billed per
        second, rounded up, at least Fargate's minimum (one minute). Priced at ``vcpu`` and ``memory_gb`` (default
        ``${TASK_VCPU}``, ``${TASK_MEMORY_GB}``) with today's prices from ``${PRICING_FILE}``, against ``budget``
        (USD, default ``${COST_BUDGET_PER_SESSION}``).

        Returns ``total`` (USD), ``withinBudget``, ``bounded``, ``budget``, ``billedSeconds``, ``typicalSeconds``,
        ``overheadSeconds`` with its parts (``startupSeconds``, ``afterDeleteSeconds``, ``poolWaitSeconds``,
        ``otherSeconds``), ``measuredBilledSeconds``, ``pricesValidFrom``, ``pricingFile`` and ``message``. It does
        not judge: `Session Cost Should Be Within Budget` does.

        Example:
        | ${cost} = | Get Typical Session Cost | ${billing} |
        | Record Metric | session_cost | ${cost}[total] | unit=USD |
        """
        typical_s = typical.total_seconds() if typical is not None else self.profile.seconds("TYPICAL_SESSION_DURATION")
        vcpu = float(vcpu if vcpu is not None else self.profile.get("TASK_VCPU"))
        memory_gb = float(memory_gb if memory_gb is not None else self.profile.get("TASK_MEMORY_GB"))
        budget = float(budget if budget is not None else self.profile.get("COST_BUDGET_PER_SESSION"))
        pricing = self._pricing()
        rates = fargate_rates(pricing)
        tasks = [BilledTask(t["task"], t["start"], t["end"], bool(t.get("pullUnseen"))) for t in billing["tasks"]]
        bill = typical_session_bill(
            tasks,
            created=billing["created"],
            running=billing["running"],
            deleted=billing["deleted"],
            until=billing["until"],
            typical_seconds=typical_s,
            minimum=rates["minimumSeconds"],
        )
        cost = typical_session_cost(bill, vcpu, memory_gb, rates, budget)
        cost["sessionId"] = billing.get("sessionId")
        cost["pricingFile"] = pricing.get("file")
        cost["source"] = billing.get("source")
        self.info(
            f"Typical session of session {cost['sessionId']}: {cost['message']} (prices valid from "
            f"{cost['pricesValidFrom']}, {cost['pricingFile']}; measured billed time of the test's own session "
            f"{format_duration(cost['measuredBilledSeconds'])})."
        )
        return cost

    @keyword(tags=["cost", "assertion"])
    def session_cost_should_be_within_budget(self, cost: dict) -> None:
        """Fails unless the typical session's cost (`Get Typical Session Cost`) is below its budget and its billing
        ended; the message names the cost, the budget and what was billed, e.g. ``cost per session 0.31 USD over the
        0.25 USD budget: billed 4.1 h (typical 1 h + 0.5 s start-up + 3.1 h billed after delete) at 1 vCPU and 2 GB``.

        Example:
        | Session Cost Should Be Within Budget | ${cost} |
        """
        message = str(cost["message"])
        if not cost["withinBudget"]:
            raise AssertionError(message[:1].upper() + message[1:] + ".")
        self.info(message[:1].upper() + message[1:] + ".")
