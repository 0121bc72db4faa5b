"""A session's billed time as Fargate bills it, and a typical session's cost against the budget (no AWS here).

The arithmetic of ``PlatformLibrary.aws.cost`` (per-second rounding, the one-minute minimum per task, prices by
date, the typical session, the verdict) and the embedded platform's ``ContainerWatch``; the keywords on ECS (moto)
are in ``test_aws_cost.py``.
"""

from __future__ import annotations

import signal
import time

import pytest
from PlatformLibrary.aws.cost import (
    PricingError,
    budget_message,
    fargate_billed_seconds,
    fargate_rates,
    format_duration,
    hourly_cost,
    typical_session_bill,
    typical_session_cost,
)
from PlatformLibrary.core.billing import BilledTask
from PlatformLibrary.targets.base import Container, ContainerBackend
from PlatformLibrary.targets.billing import ContainerWatch
from PlatformLibrary.targets.embedded.processes import LocalProcessBackend

PRICES = {
    "currency": "USD",
    "region": "us-east-1",
    "priceSets": [
        {
            "validFrom": "2024-01-01",
            "fargate": {"minimumSecondsPerTask": 60, "linux_x86": {"vcpuHour": 0.04, "gbHour": 0.004}},
        },
        {
            "validFrom": "2025-01-01",
            "fargate": {"minimumSecondsPerTask": 60, "linux_x86": {"vcpuHour": 0.08, "gbHour": 0.008}},
        },
    ],
}
HOUR = 3600.0


# ---------------------------------------------------------------------------------------------------------- billing
def test_one_minute_minimum_per_task():
    assert fargate_billed_seconds(100.0, 100.0) == 60
    assert fargate_billed_seconds(100.0, 159.2) == 60
    assert fargate_billed_seconds(100.0, 160.0) == 60
    assert fargate_billed_seconds(0.0, 30.0, minimum=0) == 30


def test_per_second_rounding_up():
    assert fargate_billed_seconds(0.0, 60.001) == 61
    assert fargate_billed_seconds(0.0, 3600.2) == 3601
    assert fargate_billed_seconds(1700000000.1, 1700000060.1) == 60  # float noise is not a second more
    with pytest.raises(PricingError, match="cannot end"):
        fargate_billed_seconds(10.0, 9.0)


def test_prices_are_looked_up_by_date():
    assert fargate_rates(PRICES, "2024-12-31")["vcpuHour"] == 0.04
    assert fargate_rates(PRICES, "2025-01-01")["vcpuHour"] == 0.08
    assert fargate_rates(PRICES, "2025-06-01") | {} == {
        "vcpuHour": 0.08,
        "gbHour": 0.008,
        "minimumSeconds": 60.0,
        "validFrom": "2025-01-01",
        "currency": "USD",
    }
    with pytest.raises(PricingError, match="No price set is valid on 2023-12-31"):
        fargate_rates(PRICES, "2023-12-31")
    with pytest.raises(PricingError, match="No Fargate prices for 'linux_arm'"):
        fargate_rates(PRICES, "2024-06-01", "linux_arm")
    assert hourly_cost(1, 2, fargate_rates(PRICES, "2024-06-01")) == pytest.approx(0.048)
    with pytest.raises(PricingError, match="positive size"):
        hourly_cost(0, 2, fargate_rates(PRICES, "2024-06-01"))


def cold(start=1000.0, running=1001.0, deleted=1011.0, stopped=1011.5, typical=HOUR):
    """One cold task: create at ``start``, RUNNING seen, delete sent, task stopped."""
    task = BilledTask("t1", start + 0.1, stopped)
    return typical_session_bill([task], start, running, deleted, stopped + 1, typical)


def test_a_typical_session_replaces_the_active_use_and_keeps_the_overhead():
    bill = cold()
    # The task ran 1011.5 - 1000.1 = 11.4 s, 10 s of it in use: a typical hour of use is billed 3601.4 -> 3602 s.
    assert bill["activeSeconds"] == 10 and bill["measuredBilledSeconds"] == 60  # the test's own session: minimum
    assert bill["billedSeconds"] == 3602 and bill["typicalSeconds"] == HOUR
    assert bill["startupSeconds"] == pytest.approx(0.9) and bill["afterDeleteSeconds"] == pytest.approx(0.5)
    assert bill["poolWaitSeconds"] == 0 and bill["overheadSeconds"] == 2 and not bill["open"]
    assert bill["otherSeconds"] == pytest.approx(0.6)  # rounding up to the whole second


def test_the_minimum_applies_to_every_task_and_other_tasks_stay_as_measured():
    crashed = BilledTask("t1", 1000.0, 1003.0)  # crashed while starting: a minute all the same
    serving = BilledTask("t2", 1003.5, 1020.0)
    bill = typical_session_bill([crashed, serving], 1000.0, 1005.0, 1015.0, 1021.0, HOUR)
    assert bill["billedSeconds"] == 60 + 3607  # 16.5 s - 10 s of use + 1 h, rounded up
    assert [t["billedSeconds"] for t in bill["tasks"]] == [60, 60]


def test_a_warm_task_is_billed_from_its_own_start_and_an_unseen_pull_from_the_create():
    warm = BilledTask("pool", 900.0, 1012.0)  # waited 100 s in the warm pool
    bill = typical_session_bill([warm], 1000.0, 1000.2, 1010.0, 1013.0, HOUR)
    assert bill["poolWaitSeconds"] == 100 and bill["startupSeconds"] == pytest.approx(0.2)
    process = BilledTask("pid@t", 1000.3, 1012.0, pull_unseen=True)  # a process: its image pull is not visible
    bill = typical_session_bill([process], 1000.0, 1000.6, 1010.0, 1013.0, HOUR)
    assert bill["tasks"][0]["start"] == 1000.0 and bill["startupSeconds"] == pytest.approx(0.6)


def test_a_task_still_running_makes_the_bill_open_until_the_measurement_ended():
    bill = typical_session_bill([BilledTask("t1", 1000.0, None)], 1000.0, 1001.0, 1011.0, 1021.0, HOUR)
    assert bill["open"] and bill["afterDeleteSeconds"] == 10 and bill["tasks"][0]["running"]


def test_moments_out_of_order_and_no_task_are_refused():
    with pytest.raises(PricingError, match="out of order"):
        typical_session_bill([BilledTask("t", 0, 1)], 5.0, 4.0, 6.0, 7.0, HOUR)
    with pytest.raises(PricingError, match="No task served"):
        typical_session_bill([], 0.0, 1.0, 2.0, 3.0, HOUR)


# ---------------------------------------------------------------------------------------------------------- verdict
RATES = fargate_rates(PRICES, "2024-06-01")  # 1 vCPU + 2 GB: 0.048 USD per hour; 0.25 USD buys 5.21 h


def test_a_typical_session_within_budget():
    cost = typical_session_cost(cold(), 1, 2, RATES, 0.25)
    assert cost["total"] == pytest.approx(3602 / HOUR * 0.048, abs=1e-6)
    assert cost["withinBudget"] and cost["bounded"]
    assert cost["message"].startswith("cost per session 0.04803 USD, below the 0.25 USD budget: billed 1.0006 h")


def test_billed_long_after_delete_is_over_budget_and_says_why():
    bill = cold(stopped=1011.0 + 3.1 * HOUR)  # the container ran 3.1 h after the delete
    assert typical_session_cost(bill, 1, 2, RATES, 0.25)["total"] < 0.25  # 4.1 h of a small task: still within
    cost = typical_session_cost(bill, 2, 4, RATES, 0.25)  # 0.096 USD per hour
    assert not cost["withinBudget"] and cost["bounded"]
    assert cost["total"] == pytest.approx(bill["billedSeconds"] / HOUR * 0.096, abs=1e-6)
    assert cost["message"] == (
        "cost per session 0.3936 USD over the 0.25 USD budget: billed 4.1003 h (typical 1 h + 0.9 s start-up + "
        "3.1 h billed after delete) at 2 vCPU and 4 GB"
    )


def test_the_budget_is_strict_below():
    hours = 0.25 / 0.048  # exactly the budget
    bill = {**cold(), "billedSeconds": hours * HOUR}
    assert not typical_session_cost(bill, 1, 2, RATES, 0.25)["withinBudget"]


def test_an_open_bill_is_never_within_budget_and_says_when_it_would_pass_it():
    bill = typical_session_bill([BilledTask("t1", 1000.0, None)], 1000.0, 1001.0, 1011.0, 1021.0, HOUR)
    cost = typical_session_cost(bill, 1, 2, RATES, 0.25)
    assert not cost["withinBudget"] and not cost["bounded"] and cost["total"] < 0.25
    # 0.25 USD buys 18750 s; the typical session without its tail is 3601 s: 15149 s may follow the delete.
    assert cost["budgetSpentAfterDeleteSeconds"] == pytest.approx(18750 - (3611 - 10), abs=1)
    assert cost["message"].startswith(
        "cost per session not bounded by the 0.25 USD budget: billing did not end after the delete (a container "
        "still ran 10 s after it); billed 1.0031 h (typical 1 h + 1 s start-up + at least 10 s billed after delete, "
        "still running)"
    )
    assert cost["message"].endswith("over the budget once it runs 4.2081 h past the delete")
    assert budget_message(cost) == cost["message"]


def test_durations_read_as_a_person_would_say_them():
    assert [format_duration(s) for s in (0.31, 90, 3600, 3602, 14760)] == [
        "0.31 s",
        "1.5 min",
        "1 h",
        "1.0006 h",
        "4.1 h",
    ]


# ---------------------------------------------------------------------------------------------------------- watching
class FakeBackend(ContainerBackend):
    """Containers the test puts in ``listed`` (the platform's view) and ``alive`` (whether the process runs)."""

    name = "fake"

    def __init__(self) -> None:
        self.listed: list[Container] = []
        self.alive: set[str] = set()

    def list_containers(self) -> list[Container]:
        return [c for c in self.listed if c.container_id in self.alive]

    def kill(self, container: Container, sig: signal.Signals) -> None:
        self.alive.discard(container.container_id)

    def is_alive(self, container: Container) -> bool:
        return container.container_id in self.alive


def until(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def test_the_watch_bills_each_container_from_its_start_until_its_process_ends():
    backend = FakeBackend()
    first = Container("c1", "s-1", "t1", 11, started_at=time.time() - 2)
    backend.listed, backend.alive = [first], {"c1"}
    watch = ContainerWatch(backend, "s-1", 0.01)
    try:
        assert [t.start for t in watch.tasks()] == [first.started_at] and not watch.ended()
        second = Container("c2", "s-1", "t2", 12, started_at=time.time())  # a replacement
        backend.listed.append(second)
        backend.alive = {"c2"}
        until(lambda: len(watch.tasks()) == 2)
        crashed_at = time.time()
        until(lambda: watch.tasks()[0].end is not None)
        assert watch.tasks()[0].end >= crashed_at - 0.05
        # The platform stops listing the container as the session's, but its process runs: still billed.
        backend.listed = []
        time.sleep(0.05)
        assert watch.tasks()[1].end is None and not watch.ended()
        backend.alive = set()
        until(watch.ended)
        assert all(t.pull_unseen for t in watch.tasks())
    finally:
        watch.stop()


def test_a_process_start_is_read_on_the_wall_clock():
    """psutil counts a process's create time from a boot time in whole seconds; the backend corrects it."""
    import subprocess
    import sys

    before = time.time()
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
    try:
        import psutil

        container = Container("x", "s", "t", proc.pid, started_at=psutil.Process(proc.pid).create_time())
        start = LocalProcessBackend("unused").wall_clock_start(container)
        assert before - 0.02 <= start <= time.time() + 0.02
    finally:
        proc.kill()
        proc.wait()
