"""Per-session cost: dated prices, the arithmetic, and usage measured from ECS tasks (moto)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from PlatformLibrary.aws.cost import (
    DEFAULT_PRICING_FILE,
    PricingError,
    SessionUsage,
    load_pricing,
    price_set_for,
    session_cost,
    task_size,
)

from tests.test_aws_support import Deployment, component, make_library, mocked_aws, use_fake_credentials

PRICES = {
    "currency": "USD",
    "region": "us-east-1",
    "priceSets": [
        {
            "validFrom": "2024-01-01",
            "fargate": {"minimumSecondsPerTask": 60, "linux_x86": {"vcpuHour": 0.04, "gbHour": 0.004}},
            "dynamodbOnDemand": {"readRequestUnitsPerMillion": 0.25, "writeRequestUnitsPerMillion": 1.25},
            "alb": {"lcuHour": 0.008, "requestsPerLcuHour": 80000},
        },
        {
            "validFrom": "2025-01-01",
            "fargate": {"minimumSecondsPerTask": 60, "linux_x86": {"vcpuHour": 0.08, "gbHour": 0.008}},
        },
    ],
}


@pytest.fixture(autouse=True)
def credentials(monkeypatch):
    use_fake_credentials(monkeypatch)


def test_the_shipped_price_file_is_dated_and_complete():
    pricing = load_pricing()
    assert pricing["file"] == str(DEFAULT_PRICING_FILE)
    current = price_set_for(pricing, date.today())
    assert date.fromisoformat(current["validFrom"]) <= date.today()
    assert current["fargate"]["linux_x86"]["vcpuHour"] > 0 and current["fargate"]["linux_arm"]["gbHour"] > 0
    assert current["dynamodbOnDemand"]["writeRequestUnitsPerMillion"] > 0
    assert current["alb"]["requestsPerLcuHour"] > 0


def test_price_set_by_date():
    assert price_set_for(PRICES, "2024-06-30")["validFrom"] == "2024-01-01"
    assert price_set_for(PRICES, "2025-01-01")["validFrom"] == "2025-01-01"
    with pytest.raises(PricingError, match="No price set is valid on 2023-12-31"):
        price_set_for(PRICES, "2023-12-31")


def test_cost_arithmetic():
    usage = SessionUsage(
        task_seconds=3600, vcpu=0.5, memory_gb=1, requests=80000, dynamodb_reads=2_000_000, dynamodb_writes=400_000
    )
    cost = session_cost(usage, PRICES, "2024-06-01")
    assert cost["compute"] == pytest.approx(0.5 * 0.04 + 1 * 0.004)
    assert cost["requests"] == pytest.approx(0.008)
    assert cost["dynamodb"] == pytest.approx(2 * 0.25 + 0.4 * 1.25)
    assert cost["total"] == pytest.approx(cost["compute"] + cost["requests"] + cost["dynamodb"])
    assert cost["pricesValidFrom"] == "2024-01-01" and cost["currency"] == "USD"
    later = session_cost(SessionUsage(3600, 0.5, 1), PRICES, "2025-06-01")
    assert later["compute"] == pytest.approx(2 * cost["compute"]) and later["requests"] == 0


def test_bad_usage_and_prices():
    with pytest.raises(PricingError, match="No Fargate prices for 'windows'"):
        session_cost(SessionUsage(1, 1, 1, architecture="windows"), PRICES, "2024-06-01")
    with pytest.raises(PricingError, match="cannot be negative"):
        session_cost(SessionUsage(-1, 1, 1), PRICES, "2024-06-01")
    with pytest.raises(PricingError, match="Cannot read the price file"):
        load_pricing("/nonexistent/prices.json")
    with pytest.raises(PricingError, match="cpu/memory"):
        task_size({"taskArn": "t"})
    assert task_size({"cpu": "512", "memory": "1024"}) == (0.5, 1.0)


def test_estimate_keyword_uses_the_profiles_price_file(tmp_path):
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps(PRICES))
    library = make_library(AWS_PRICING_FILE=str(prices))
    cost = library.keywords["estimate_session_cost"](1800, vcpu=1, memory_gb=2, day="2024-03-01")
    assert cost["total"] == pytest.approx(0.5 * (0.04 + 2 * 0.004))


def test_session_cost_from_measured_tasks():
    with mocked_aws():
        aws = Deployment()
        now = datetime.now(UTC)
        first = aws.run_task("s-1")
        aws.set_timestamps(first, now - timedelta(seconds=700), pull=10, pulled=30, started=40)
        aws.model(first).stopped_at = now - timedelta(seconds=90)  # billed 600 s
        aws.model(first).last_status = "STOPPED"
        aws.model(first).desired_status = "STOPPED"
        second = aws.run_task("s-1")  # the replacement, still running: billed until now
        aws.set_timestamps(second, now - timedelta(seconds=130), pull=10, pulled=20, started=25)
        aws.run_task("s-2")
        library = make_library()
        usage = library.keywords["get_session_task_usage"]("s-1")
        assert usage["tasks"] == 2 and usage["vcpu"] == 1 and usage["memoryGb"] == 2
        assert usage["architecture"] == "linux_x86"
        assert usage["taskSeconds"] == pytest.approx(600 + 120, abs=2)
        cost = library.keywords["get_session_cost"]("s-1", requests=1000)
        prices = price_set_for(load_pricing())["fargate"]["linux_x86"]
        expected = usage["taskSeconds"] / 3600 * (prices["vcpuHour"] + 2 * prices["gbHour"])
        assert cost["compute"] == pytest.approx(expected, rel=1e-3)
        assert cost["requests"] > 0 and cost["sessionId"] == "s-1" and cost["tasks"] == 2
        with pytest.raises(AssertionError, match="Session s-9 has no ECS task"):
            library.keywords["get_session_task_usage"]("s-9")


REPORT_PRICING = DEFAULT_PRICING_FILE.parent / "pricing.json"


@pytest.mark.skipif(not REPORT_PRICING.is_file(), reason="the report's price file is not there")
def test_prices_agree_with_the_reports_price_file():
    """Two files hold AWS prices (the report's and the AWS keywords' dated one): they must not drift apart."""
    report = load_pricing(REPORT_PRICING)
    ours = load_pricing()
    day = report["priceSets"][0]["validFrom"]
    theirs, mine = price_set_for(report, day), price_set_for(ours, day)
    assert theirs["fargate"]["linux_x86"] == mine["fargate"]["linux_x86"]
    assert theirs["dynamodbOnDemand"] == mine["dynamodbOnDemand"]
    assert report["currency"] == ours["currency"] and report["region"] == ours["region"]
    usage = SessionUsage(3600, 1, 2, dynamodb_reads=10, dynamodb_writes=5)
    assert session_cost(usage, report, day)["total"] == session_cost(usage, ours, day)["total"]


COST_VALUES = {
    "TYPICAL_SESSION_DURATION": "1 h",
    "TASK_VCPU": 1.0,
    "TASK_MEMORY_GB": 2.0,
    "COST_BUDGET_PER_SESSION": 0.25,
    "ORPHAN_GRACE_TIMEOUT": "300 ms",
}


def stop(aws: Deployment, task: str, at: datetime) -> None:
    model = aws.model(task)
    model.stopped_at = at
    model.last_status = model.desired_status = "STOPPED"


def test_a_sessions_billed_ecs_tasks_price_a_typical_session_within_budget():
    """On AWS the session's tasks are read from ECS (pullStartedAt .. stoppedAt), stopped ones too."""
    with mocked_aws():
        aws = Deployment()
        now = datetime.now(UTC)
        task = aws.run_task("s-1")
        aws.set_timestamps(task, now - timedelta(seconds=30), pull=0, pulled=5, started=8)  # billed from now-30
        library = make_library(**COST_VALUES)
        component(library, "create_session").note_lifecycle(
            "s-1",
            created=(now - timedelta(seconds=31)).timestamp(),
            running=(now - timedelta(seconds=20)).timestamp(),
            deleted=(now - timedelta(seconds=5)).timestamp(),
        )
        library.keywords["watch_session_billing"]("s-1")
        stop(aws, task, now - timedelta(seconds=3))
        billing = library.keywords["wait_until_session_billing_ends"]("s-1")
        assert not billing["open"] and [t["task"] for t in billing["tasks"]] == [task]
        assert billing["source"] == "ECS tasks, as recorded"
        cost = library.keywords["get_typical_session_cost"](billing)
        # 27 s billed, 15 s of them in use: a typical hour of use is billed 3612 s.
        assert cost["billedSeconds"] == 3612 and cost["startupSeconds"] == pytest.approx(10, abs=0.01)
        assert cost["afterDeleteSeconds"] == pytest.approx(2, abs=0.01) and cost["bounded"]
        prices = price_set_for(load_pricing())["fargate"]["linux_x86"]
        assert cost["total"] == pytest.approx(3612 / 3600 * (prices["vcpuHour"] + 2 * prices["gbHour"]), abs=1e-6)
        assert cost["pricingFile"] == str(DEFAULT_PRICING_FILE)  # no PRICING_FILE: the AWS price file
        library.keywords["session_cost_should_be_within_budget"](cost)


def test_a_task_still_running_after_the_delete_fails_the_budget():
    with mocked_aws():
        aws = Deployment()
        now = datetime.now(UTC)
        task = aws.run_task("s-2")
        aws.set_timestamps(task, now - timedelta(seconds=30), pull=0, pulled=5, started=8)
        library = make_library(**COST_VALUES)
        component(library, "create_session").note_lifecycle(
            "s-2",
            created=(now - timedelta(seconds=31)).timestamp(),
            running=(now - timedelta(seconds=20)).timestamp(),
            deleted=(now - timedelta(seconds=5)).timestamp(),
        )
        library.keywords["watch_session_billing"]("s-2")
        billing = library.keywords["wait_until_session_billing_ends"]("s-2")  # 300 ms, then open
        assert billing["open"] and billing["tasks"][0]["end"] is None
        cost = library.keywords["get_typical_session_cost"](billing)
        assert not cost["withinBudget"] and not cost["bounded"]
        with pytest.raises(AssertionError, match=r"Cost per session not bounded by the 0.25 USD budget: billing did"):
            library.keywords["session_cost_should_be_within_budget"](cost)


def test_billing_needs_a_watch_and_the_sessions_moments(tmp_path):
    with mocked_aws():
        Deployment()
        library = make_library(**COST_VALUES)
        with pytest.raises(AssertionError, match="was not watched"):
            library.keywords["wait_until_session_billing_ends"]("s-3")
        library.keywords["watch_session_billing"]("s-3")
        with pytest.raises(AssertionError, match="has no created, running, deleted moment"):
            library.keywords["wait_until_session_billing_ends"]("s-3")


def test_the_profiles_price_file_prices_the_typical_session(tmp_path):
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps(PRICES))
    billing = {"sessionId": "s", "tasks": [{"task": "t", "start": 0.0, "end": 20.0}], "created": 0.0}
    billing |= {"running": 5.0, "deleted": 15.0, "until": 21.0, "source": "test"}
    library = make_library(PRICING_FILE=str(prices), **COST_VALUES)
    cost = library.keywords["get_typical_session_cost"](billing)
    assert cost["pricingFile"] == str(prices) and cost["pricesValidFrom"] == "2025-01-01"
    assert cost["total"] == pytest.approx(3610 / 3600 * (0.08 + 2 * 0.008), abs=1e-6)
    cheaper = library.keywords["get_typical_session_cost"](billing, vcpu=0.5, memory_gb=1, budget=0.01)
    assert cheaper["total"] == pytest.approx(cost["total"] / 2, abs=1e-6) and not cheaper["withinBudget"]
