"""Cost keywords: what a session costs, priced from a dated AWS price file.

The pricing engine is :mod:`PlatformLibrary.aws.cost`; a session's billed time on AWS comes from its ECS
tasks (``EcsKeywords.get_session_task_usage``).
"""

from __future__ import annotations

from robot.api.deco import keyword

from ..aws.cost import SessionUsage, load_pricing, session_cost
from ..core.base import LibraryComponent, LibraryContext
from ..sessions.api import SessionRef
from ..targets.aws.keywords import EcsKeywords


class CostKeywords(LibraryComponent):
    """Prices a session's usage (``Estimate Session Cost``) or its ECS tasks' billed time (``Get Session Cost``)."""

    def __init__(self, ctx: LibraryContext, ecs: EcsKeywords):
        super().__init__(ctx)
        self.ecs = ecs

    def _pricing(self) -> dict:
        return load_pricing(self.profile.text("AWS_PRICING_FILE", "") or None)

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

        Prices come from ``${AWS_PRICING_FILE}`` (default ``resources/pricing_aws.json``), a dated file.
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
