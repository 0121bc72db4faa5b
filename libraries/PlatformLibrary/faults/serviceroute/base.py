"""What the route keywords need of a target, whichever it is, for the platform's route to one AWS service (DynamoDB,
CloudWatch): check a fault can run, cut the route, slow it down, lose a share of its connections. Each fault is recorded
in the fault ledger and returns its id (reverted by `Revert Fault`, `Revert All Faults` or the test's fault clean-up).

A route is described once (``RouteSpec``): the AWS service, the embedded platform's hop its calls take, and on AWS the
ECS service whose tasks make those calls and the FIS ``sources`` that name the service's endpoint."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

__all__ = ["FAULTS", "ROUTES", "RouteSpec", "ServiceRoute", "check_fault_name", "check_percent", "route_spec"]

# The faults a test can ask for (`DynamoDB Route Fault Should Be Possible`): the service unreachable, slow, or some
# calls lost on the way.
FAULTS = ("outage", "slow", "loss")


@dataclass(frozen=True)
class RouteSpec:
    """The platform's route to one AWS service.

    ``hop``: the embedded platform's fault-proxy hop every call of the platform to the service takes. ``sources_key``:
    the profile variable with the FIS ``sources`` naming the service's endpoint, and ``default_sources(region)`` what
    they are without it. ``callers_key``: the profile variable naming the ECS service whose tasks make the calls (on
    AWS the faults are FIS network actions on every one of its tasks), and ``callers`` how the messages name them.
    """

    service: str
    title: str
    hop: str
    sources_key: str
    default_sources: Callable[[str], str]
    callers_key: str
    callers: str


ROUTES = {
    # FIS's own name for "the Regional endpoint of DynamoDB in the current Region" (the actions reference, sources).
    "dynamodb": RouteSpec(
        "dynamodb", "DynamoDB", "dynamodb", "DYNAMODB_FAULT_SOURCES", lambda _region: "DYNAMODB", "API_ECS_SERVICE",
        "the API tasks",
    ),
    # FIS has no keyword for CloudWatch: its Regional endpoint by name (AWS General Reference, "Amazon CloudWatch
    # endpoints and quotas": monitoring.<region>.amazonaws.com).
    "cloudwatch": RouteSpec(
        "cloudwatch", "CloudWatch", "cloudwatch", "CLOUDWATCH_FAULT_SOURCES",
        lambda region: f"monitoring.{region}.amazonaws.com", "METRICS_ECS_SERVICE",
        "the tasks that publish the platform's metrics",
    ),
}  # fmt: skip


def route_spec(service: str) -> RouteSpec:
    wanted = str(service).strip().lower()
    if wanted not in ROUTES:
        raise ValueError(f"The platform's routes to AWS services are {', '.join(ROUTES)}, not {service!r}.")
    return ROUTES[wanted]


class ServiceRoute(ABC):
    """The platform's route to one AWS service, and the faults on it."""

    name = "route to an AWS service"

    def __init__(self, spec: RouteSpec):
        self.spec = spec

    @abstractmethod
    def check(self, fault: str) -> None:
        """Raises (a skip, or a failure naming what is missing) unless ``fault`` can run here; creates nothing."""

    @abstractmethod
    def cut_off(self) -> str:
        """The service stops answering the platform: its calls get no answer at all until the fault is reverted."""

    @abstractmethod
    def slow_down(self, latency: timedelta) -> str:
        """Every call of the platform to the service takes ``latency`` longer."""

    @abstractmethod
    def lose(self, percent: int) -> str:
        """``percent`` % of the platform's connections to the service lose everything they carry (those calls time
        out)."""


def check_fault_name(fault: str) -> str:
    wanted = str(fault).strip().lower()
    if wanted not in FAULTS:
        raise ValueError(f"A fault on a route to an AWS service is one of {', '.join(FAULTS)}, not {fault!r}.")
    return wanted


def check_percent(percent: int) -> int:
    value = int(percent)
    if not 1 <= value <= 100:
        raise ValueError(f"The share of lost connections is a percentage from 1 to 100, not {percent!r}.")
    return value
