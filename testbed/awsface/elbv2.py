"""Elastic Load Balancing v2 (AWS query protocol, XML answers) over the embedded platform's load balancer.

One operation, the one the suite reads: ``DescribeTargetHealth`` of the API tier's target group, answered from the
load balancer's own view of its targets (``testbed/loadbalancer.py``, ``GET /targets`` on its admin port). The
request is a form-encoded ``POST`` with ``Action`` and ``Version=2015-12-01`` (botocore's ``query`` protocol); the
answer is ``<DescribeTargetHealthResponse>`` in the namespace of botocore's service model, with
``DescribeTargetHealthResult`` wrapping ``TargetHealthDescriptions`` (``member`` per target: ``Target`` ``Id`` and
``Port``, ``HealthCheckPort``, ``TargetHealth`` ``State``, ``Reason``, ``Description``). Errors are
``<ErrorResponse><Error><Type>``/``<Code>``/``<Message>`` with the HTTP status of the service model
(``TargetGroupNotFound`` 400, ``HealthUnavailable`` 500, ``InvalidAction`` 400 for any other operation).

What each target's health says follows the ELB API reference, "TargetHealth": ``initial`` with
``Elb.RegistrationInProgress``, ``healthy`` with no reason nor description, ``unhealthy`` with
``Target.Timeout`` / ``Target.FailedHealthChecks`` / ``Target.ResponseCodeMismatch``, ``draining`` with
``Target.DeregistrationInProgress``, and ``unused`` with ``Target.NotRegistered`` for a target asked for by
``Targets`` that is not registered. The target group is of target type ``ip`` (Fargate tasks): a target's ``Id``
is its task's private address and its ``Port`` the port the task listens on. Simplified: every task here has the
address 127.0.0.1, so targets differ by port only; no other target group, no ``AnomalyDetection`` or
``AdministrativeOverride`` fields; when the load balancer does not answer the call fails ``HealthUnavailable``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from xml.sax.saxutils import escape

XMLNS = "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"
VERSION = "2015-12-01"
REQUEST_ID = "00000000-0000-4000-8000-000000000000"
TARGET_ADDRESS = "127.0.0.1"  # every task of the embedded platform
DESCRIPTIONS = {
    "Elb.RegistrationInProgress": "Target registration is in progress",
    "Elb.InitialHealthChecking": "Initial health checks in progress",
    "Target.Timeout": "Request timed out",
    "Target.FailedHealthChecks": "Health checks failed",
    "Target.ResponseCodeMismatch": "Health checks failed with these codes: [503]",
    "Target.DeregistrationInProgress": "Target deregistration is in progress",
    "Target.NotRegistered": "Target is not registered to the target group",
}

Answer = tuple[int, str]


class ElbError(Exception):
    def __init__(self, status: int, code: str, message: str, sender: bool = True) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.sender = status, code, message, sender


class ElbV2Emulator:
    """DescribeTargetHealth of one target group; ``targets()`` is the load balancer's view (None: it is down)."""

    def __init__(self, target_group_arn: str, targets: Callable[[], list[dict[str, Any]] | None]) -> None:
        self.target_group_arn = target_group_arn
        self.targets = targets

    def handle(self, params: dict[str, list[str]]) -> Answer:
        """One query-protocol request (its form fields) -> (HTTP status, XML body)."""
        action = (params.get("Action") or [""])[0]
        try:
            if action != "DescribeTargetHealth":
                raise ElbError(
                    400,
                    "InvalidAction",
                    f"The embedded platform's ELBv2 face does not emulate {action or 'an empty Action'!r}; it serves "
                    "DescribeTargetHealth (docs/aws-emulation.md).",
                )
            return 200, self._describe_target_health(params)
        except ElbError as error:
            return error.status, self._error(error)

    def _describe_target_health(self, params: dict[str, list[str]]) -> str:
        arn = (params.get("TargetGroupArn") or [""])[0]
        if arn != self.target_group_arn:
            raise ElbError(400, "TargetGroupNotFound", "One or more target groups not found")
        seen = self.targets()
        if seen is None:
            raise ElbError(500, "HealthUnavailable", "The health of the targets is unavailable.", sender=False)
        registered = {(TARGET_ADDRESS, int(t["port"])): t for t in seen}
        wanted = self._wanted_targets(params)
        members = []
        for key in wanted if wanted is not None else list(registered):
            target = registered.get(key)
            if target is None:
                state, reason = "unused", "Target.NotRegistered"
            else:
                state, reason = str(target["state"]), str(target.get("reason") or "")
            members.append(self._member(key, state, reason))
        body = "".join(members)
        return (
            f'<DescribeTargetHealthResponse xmlns="{XMLNS}"><DescribeTargetHealthResult>'
            f"<TargetHealthDescriptions>{body}</TargetHealthDescriptions></DescribeTargetHealthResult>"
            f"<ResponseMetadata><RequestId>{REQUEST_ID}</RequestId></ResponseMetadata></DescribeTargetHealthResponse>"
        )

    @staticmethod
    def _wanted_targets(params: dict[str, list[str]]) -> list[tuple[str, int]] | None:
        """``Targets.member.N.Id`` / ``.Port`` of the request, or None when it names no target."""
        numbers = sorted({int(k.split(".")[2]) for k in params if k.startswith("Targets.member.")})
        if not numbers:
            return None
        wanted = []
        for n in numbers:
            ident = (params.get(f"Targets.member.{n}.Id") or [""])[0]
            port = (params.get(f"Targets.member.{n}.Port") or [""])[0]
            if not ident or not port.isdigit():
                raise ElbError(400, "ValidationError", f"Targets.member.{n} needs an Id and a Port.")
            wanted.append((ident, int(port)))
        return wanted

    @staticmethod
    def _member(key: tuple[str, int], state: str, reason: str) -> str:
        ident, port = key
        health = f"<State>{escape(state)}</State>"
        if state != "healthy" and reason:
            health += f"<Reason>{escape(reason)}</Reason>"
            health += f"<Description>{escape(DESCRIPTIONS.get(reason, reason))}</Description>"
        return (
            f"<member><Target><Id>{escape(ident)}</Id><Port>{port}</Port></Target>"
            f"<HealthCheckPort>{port}</HealthCheckPort><TargetHealth>{health}</TargetHealth></member>"
        )

    @staticmethod
    def _error(error: ElbError) -> str:
        kind = "Sender" if error.sender else "Receiver"
        return (
            f'<ErrorResponse xmlns="{XMLNS}"><Error><Type>{kind}</Type><Code>{escape(error.code)}</Code>'
            f"<Message>{escape(error.message)}</Message></Error><RequestId>{REQUEST_ID}</RequestId></ErrorResponse>"
        )
