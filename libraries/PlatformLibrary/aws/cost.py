"""Per-session cost from measured usage and dated prices (``resources/pricing_aws.json`` by default).

The report's ``resources/pricing.json`` (one date, Fargate x86 and DynamoDB only) is read too when
``${AWS_PRICING_FILE}`` points at it; a unit test keeps the prices of both files in agreement.

Cost = Fargate compute (task-seconds x vCPU and GB, at least the per-task minimum) + ALB requests (as LCU-hours)
+ DynamoDB on-demand request units. Prices come from the price set valid on the day the cost is for; every
result names that set, so a report always says which prices it used.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

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
    price set, so ``${AWS_PRICING_FILE}`` may point at it (it has no ALB or ARM prices)."""
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
