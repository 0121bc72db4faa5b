"""Per-session cost from measured usage and dated prices (``resources/pricing_aws.json`` by default).

The report's ``resources/pricing.json`` (one date, Fargate x86 and DynamoDB only) is read too when the profile's
``${PRICING_FILE}`` points at it; a unit test keeps the prices of both files in agreement.

Cost = Fargate compute (task-seconds x vCPU and GB, at least the per-task minimum) + ALB requests (as LCU-hours)
+ DynamoDB on-demand request units. Prices come from the price set valid on the day the cost is for; every
result names that set, so a report always says which prices it used.

A *typical session's* cost (`typical_session_bill`, `typical_session_cost`) starts from one session's measured
billed time: each task that served it, from the moment Fargate starts billing it (``pullStartedAt``) to its stop,
rounded up to the second with the one-minute minimum per task. Its active use (from the moment the client saw it
``RUNNING`` until the delete was sent) is then replaced by the profile's typical duration; what was billed beyond
the active use (start-up, the tail after the delete, a warm-pool wait, per-task minimums) stays as measured.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from ..core.billing import BilledTask

DEFAULT_PRICING_FILE = Path(__file__).resolve().parents[3] / "resources" / "pricing_aws.json"
ARCHITECTURES = ("linux_x86", "linux_arm")


class PricingError(ValueError):
    ROBOT_SUPPRESS_NAME = True


@dataclass(frozen=True)
class SessionUsage:
    """What one session used: task-seconds at a task size, API requests, DynamoDB request units."""

    task_seconds: float
    vcpu: float
    memory_gb: float
    requests: int = 0
    dynamodb_reads: float = 0.0
    dynamodb_writes: float = 0.0
    architecture: str = "linux_x86"


def load_pricing(path: str | Path | None = None) -> dict:
    file = Path(path) if path else DEFAULT_PRICING_FILE
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise PricingError(f"Cannot read the price file {file}: {error}") from None
    if isinstance(data, dict) and "priceSets" not in data and "fargate_vcpu_hour" in data:
        data = from_report_pricing(data)
    if not isinstance(data, dict) or not data.get("priceSets"):
        raise PricingError(f"Price file {file} has no 'priceSets'.")
    data["file"] = str(file)
    return data


def from_report_pricing(flat: Mapping[str, Any]) -> dict:
    """The report's one-date price file (``resources/pricing.json``: ``as_of``, ``fargate_vcpu_hour`` ...) as one
    price set, so ``${PRICING_FILE}`` may point at it (it has no ALB or ARM prices)."""
    return {
        "currency": flat.get("currency", "USD"),
        "region": flat.get("region", ""),
        "priceSets": [
            {
                "validFrom": flat["as_of"],
                "source": flat.get("source", ""),
                "fargate": {
                    "minimumSecondsPerTask": 60,
                    "linux_x86": {"vcpuHour": flat["fargate_vcpu_hour"], "gbHour": flat["fargate_gb_hour"]},
                },
                "dynamodbOnDemand": {
                    "readRequestUnitsPerMillion": flat.get("dynamodb_read_request_unit_per_million", 0.0),
                    "writeRequestUnitsPerMillion": flat.get("dynamodb_write_request_unit_per_million", 0.0),
                },
            }
        ],
    }


def price_set_for(pricing: Mapping[str, Any], day: date | str | None = None) -> dict:
    """The price set valid on ``day`` (default today): the latest ``validFrom`` not after it."""
    when = date.fromisoformat(day) if isinstance(day, str) else (day or date.today())
    valid = []
    for entry in pricing["priceSets"]:
        try:
            valid_from = date.fromisoformat(str(entry["validFrom"]))
        except (KeyError, ValueError):
            raise PricingError(f"Price set without a valid 'validFrom' date: {entry!r}") from None
        if valid_from <= when:
            valid.append((valid_from, entry))
    if not valid:
        raise PricingError(f"No price set is valid on {when.isoformat()} in {pricing.get('file', 'the price file')}.")
    return max(valid, key=lambda item: item[0])[1]


def session_cost(usage: SessionUsage, pricing: Mapping[str, Any], day: date | str | None = None) -> dict:
    """The cost of ``usage`` with its breakdown, currency and the price set used."""
    prices = price_set_for(pricing, day)
    fargate = prices["fargate"]
    if usage.architecture not in fargate:
        raise PricingError(f"No Fargate prices for {usage.architecture!r}; known: {', '.join(ARCHITECTURES)}.")
    if min(usage.task_seconds, usage.vcpu, usage.memory_gb, usage.requests) < 0:
        raise PricingError(f"Usage cannot be negative: {usage}.")
    hours = usage.task_seconds / 3600
    rates = fargate[usage.architecture]
    compute = hours * (usage.vcpu * rates["vcpuHour"] + usage.memory_gb * rates["gbHour"])
    alb = prices.get("alb", {})
    requests = usage.requests / alb["requestsPerLcuHour"] * alb["lcuHour"] if usage.requests and alb else 0.0
    dynamo = prices.get("dynamodbOnDemand", {})
    dynamodb = (
        usage.dynamodb_reads * dynamo.get("readRequestUnitsPerMillion", 0.0)
        + usage.dynamodb_writes * dynamo.get("writeRequestUnitsPerMillion", 0.0)
    ) / 1_000_000
    total = compute + requests + dynamodb
    return {
        "total": round(total, 8),
        "compute": round(compute, 8),
        "requests": round(requests, 8),
        "dynamodb": round(dynamodb, 8),
        "currency": pricing.get("currency", "USD"),
        "region": pricing.get("region", ""),
        "pricesValidFrom": prices["validFrom"],
        "pricesSource": prices.get("source", ""),
        "usage": {
            "taskSeconds": round(usage.task_seconds, 3),
            "vcpu": usage.vcpu,
            "memoryGb": usage.memory_gb,
            "requests": usage.requests,
            "dynamodbReads": usage.dynamodb_reads,
            "dynamodbWrites": usage.dynamodb_writes,
            "architecture": usage.architecture,
        },
    }


def task_size(task: Mapping[str, Any], task_definition: Mapping[str, Any] | None = None) -> tuple[float, float]:
    """(vCPU, GB) of a task from its ``cpu`` units and ``memory`` MiB, else from its task definition."""
    cpu = task.get("cpu") or (task_definition or {}).get("cpu")
    memory = task.get("memory") or (task_definition or {}).get("memory")
    if not cpu or not memory:
        raise PricingError(f"Task {task.get('taskArn')} has no task-level cpu/memory; cannot price it.")
    return int(cpu) / 1024, int(memory) / 1024


def architecture_of(task_definition: Mapping[str, Any] | None) -> str:
    platform = (task_definition or {}).get("runtimePlatform") or {}
    return "linux_arm" if str(platform.get("cpuArchitecture", "")).upper() == "ARM64" else "linux_x86"


def profile_pricing_file(profile: object) -> str | None:
    """The price file a profile names: ``${PRICING_FILE}``, else ``${AWS_PRICING_FILE}`` (its older name), else
    ``None`` (the default, ``resources/pricing_aws.json``). ``profile`` is a ``core.profile.Profile``."""
    for name in ("PRICING_FILE", "AWS_PRICING_FILE"):
        value = profile.text(name, "")  # type: ignore[attr-defined]
        if value:
            return value
    return None


# ---------------------------------------------------------------------------------------------------------- billing
def fargate_rates(
    pricing: Mapping[str, Any], day: date | str | None = None, architecture: str = "linux_x86"
) -> dict[str, Any]:
    """What one Fargate task-hour costs on ``day``: ``vcpuHour``, ``gbHour``, ``minimumSeconds`` per task and the
    price set's ``validFrom``."""
    prices = price_set_for(pricing, day)
    fargate = prices["fargate"]
    if architecture not in fargate:
        raise PricingError(f"No Fargate prices for {architecture!r}; known: {', '.join(ARCHITECTURES)}.")
    return {
        "vcpuHour": float(fargate[architecture]["vcpuHour"]),
        "gbHour": float(fargate[architecture]["gbHour"]),
        "minimumSeconds": float(fargate.get("minimumSecondsPerTask", 60)),
        "validFrom": prices["validFrom"],
        "currency": pricing.get("currency", "USD"),
    }


def fargate_billed_seconds(start: float, end: float, minimum: float = 60.0) -> int:
    """Seconds Fargate bills for one task that ran from ``start`` to ``end`` (epoch seconds): per second, rounded
    up to the whole second, and at least ``minimum`` (Fargate's one-minute minimum per task)."""
    if end < start:
        raise PricingError(f"A task cannot end ({end}) before it starts ({start}).")
    # Timestamps carry float noise (60.0000001 s is 60 s, not 61): round to the microsecond before rounding up.
    return max(math.ceil(minimum), math.ceil(round(end - start, 6)))


def hourly_cost(vcpu: float, memory_gb: float, rates: Mapping[str, Any]) -> float:
    """What one task of ``vcpu`` and ``memory_gb`` costs per hour at ``rates`` (`fargate_rates`)."""
    if vcpu <= 0 or memory_gb <= 0:
        raise PricingError(f"A task needs a positive size, got {vcpu} vCPU and {memory_gb} GB.")
    return vcpu * float(rates["vcpuHour"]) + memory_gb * float(rates["gbHour"])


def typical_session_bill(
    tasks: Sequence[BilledTask],
    created: float,
    running: float,
    deleted: float,
    until: float,
    typical_seconds: float,
    minimum: float = 60.0,
) -> dict[str, Any]:
    """The billed time of a typical session, from one measured session.

    ``tasks``: every task that served the session; ``created``, ``running``, ``deleted``: when the create request
    was sent, when the client first saw the session ``RUNNING`` and when the delete was sent; ``until``: when the
    measurement ended (a task still running is billed until then, and the bill is *open*); ``typical_seconds``:
    how long a user keeps a session. The task that served the active use (running when the session was first seen
    ``RUNNING``, else the longest) has its active use stretched to ``typical_seconds``; every task is billed per
    second, rounded up, at least ``minimum``.

    Returns ``billedSeconds`` (typical session), ``measuredBilledSeconds`` (the session as measured),
    ``typicalSeconds``, ``activeSeconds``, the overhead beyond the typical use (``overheadSeconds``) and its parts
    ``poolWaitSeconds`` (task started before the create: a warm pool), ``startupSeconds`` (to ``RUNNING``),
    ``afterDeleteSeconds`` (from the delete to the last stop, or to ``until`` while open), ``otherSeconds``
    (per-task minimums, rounding, other tasks), ``open`` and ``tasks`` (each with ``start``, ``end``, ``seconds``,
    ``billedSeconds``, ``running``).
    """
    if not tasks:
        raise PricingError("No task served the session: there is no billed time to price.")
    if not created <= running <= deleted <= until:
        raise PricingError(
            f"The session's moments are out of order: created {created}, running {running}, deleted {deleted}, "
            f"measured until {until}."
        )
    first = min(tasks, key=lambda t: t.start)
    spans = []
    for task in tasks:
        start = min(task.start, created) if task is first and task.pull_unseen else task.start
        end = task.end if task.end is not None else until
        spans.append((task, start, max(start, end)))
    around = [s for s in spans if s[1] <= running <= s[2]]
    serving = around[0] if around else max(spans, key=lambda s: s[2] - s[1])
    active = deleted - running
    stretch = typical_seconds - active
    measured = typical = 0
    described = []
    for task, start, end in spans:
        billed = fargate_billed_seconds(start, end, minimum)
        measured += billed
        typical += fargate_billed_seconds(start, max(start, end + stretch), minimum) if task is serving[0] else billed
        described.append(
            {
                "task": task.task,
                "start": round(start, 3),
                "end": round(end, 3),
                "seconds": round(end - start, 3),
                "billedSeconds": billed,
                "running": task.end is None,
            }
        )
    begin = min(s[1] for s in spans)
    last = max(s[2] for s in spans)
    pool_wait = max(0.0, created - begin)
    startup = max(0.0, running - max(begin, created))
    after_delete = max(0.0, last - deleted)
    overhead = typical - typical_seconds
    return {
        "billedSeconds": typical,
        "measuredBilledSeconds": measured,
        "typicalSeconds": typical_seconds,
        "activeSeconds": round(active, 3),
        "overheadSeconds": round(overhead, 3),
        "poolWaitSeconds": round(pool_wait, 3),
        "startupSeconds": round(startup, 3),
        "afterDeleteSeconds": round(after_delete, 3),
        "otherSeconds": round(overhead - pool_wait - startup - after_delete, 3),
        "open": any(t.end is None for t in tasks),
        "tasks": described,
    }


def typical_session_cost(
    bill: Mapping[str, Any], vcpu: float, memory_gb: float, rates: Mapping[str, Any], budget: float
) -> dict[str, Any]:
    """`typical_session_bill` priced at a task size and `fargate_rates`, with the verdict against ``budget`` (USD).

    ``total``: the cost (USD); ``withinBudget``: the bill ended and ``total`` is below ``budget``; an open bill is
    never within budget (nobody knows when it ends), and ``budgetSpentAfterDeleteSeconds`` says how long past the
    delete the task may run before the budget is spent. ``message``: the verdict in one sentence.
    """
    hourly = hourly_cost(vcpu, memory_gb, rates)
    total = bill["billedSeconds"] / 3600 * hourly
    budget_seconds = budget / hourly * 3600
    headroom_after_delete = budget_seconds - (bill["billedSeconds"] - bill["afterDeleteSeconds"])
    within = not bill["open"] and total < budget
    result = {
        "total": round(total, 6),
        "currency": rates.get("currency", "USD"),
        "budget": budget,
        "withinBudget": within,
        "bounded": not bill["open"],
        "hourly": round(hourly, 6),
        "vcpu": vcpu,
        "memoryGb": memory_gb,
        "pricesValidFrom": rates.get("validFrom"),
        "budgetSeconds": round(budget_seconds, 1),
        "budgetSpentAfterDeleteSeconds": round(headroom_after_delete, 1),
        **dict(bill),
    }
    result["message"] = budget_message(result)
    return result


def format_duration(seconds: float) -> str:
    """``4.1 h``, ``12.5 min``, ``0.31 s``: the unit a reader wants for a billed time."""
    if seconds >= 3600:
        return f"{seconds / 3600:.5g} h" if seconds % 360 else f"{seconds / 3600:g} h"
    if seconds >= 60:
        return f"{seconds / 60:.3g} min"
    return f"{seconds:.3g} s"


def budget_message(cost: Mapping[str, Any]) -> str:
    """One sentence: the cost per session against the budget and what it was billed for."""
    parts = [f"typical {format_duration(cost['typicalSeconds'])}"]
    if cost["poolWaitSeconds"] >= 0.05:  # less is clock-tick noise (a process start is known to 10 ms)
        parts.append(f"{format_duration(cost['poolWaitSeconds'])} in the warm pool before the create")
    parts.append(f"{format_duration(cost['startupSeconds'])} start-up")
    tail = f"{format_duration(cost['afterDeleteSeconds'])} billed after delete"
    parts.append(f"at least {tail}, still running" if cost["open"] else tail)
    if abs(cost["otherSeconds"]) >= 1:
        parts.append(f"{format_duration(cost['otherSeconds'])} of per-task minimums, rounding and other tasks")
    billed = f"billed {format_duration(cost['billedSeconds'])} ({' + '.join(parts)})"
    size = f"at {cost['vcpu']:g} vCPU and {cost['memoryGb']:g} GB"
    money = f"{cost['total']:.4g} {cost['currency']}"
    budget = f"{cost['budget']:g} {cost['currency']} budget"
    if cost["open"]:
        return (
            f"cost per session not bounded by the {budget}: billing did not end after the delete (a container still "
            f"ran {format_duration(cost['afterDeleteSeconds'])} after it); {billed} {size} = {money} so far, over "
            f"the budget once it runs {format_duration(max(0.0, cost['budgetSpentAfterDeleteSeconds']))} past the "
            "delete"
        )
    if cost["withinBudget"]:
        return f"cost per session {money}, below the {budget}: {billed} {size}"
    return f"cost per session {money} over the {budget}: {billed} {size}"
