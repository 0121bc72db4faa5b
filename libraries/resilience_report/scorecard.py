"""The scorecard at the top of the resilience report: one row per target of the seed, verdicts from the tests.

A row finds its tests by a **tag pattern** over the tags the tests already carry (Robot Framework's ``--include``
syntax, matched with Robot's own ``TagPatterns``, so ``robot --include <pattern>`` reruns exactly a row's tests).
Its **verdict is those tests' status** in output.xml: a failed test makes the row FAIL even when its number looks
fine, a skipped one SKIPPED with the skip message, no matching test NOT RUN. The report never judges a number
itself. Its **measured value** comes from the metric records and load runs those tests wrote (every record carries
its test's long name), with the sample count, and a percentile over too few samples is the max of N.

Bounds: the profile's (the run's) and the seed's, which are the AWS profile's (``resources/profiles/aws.py``). On
the embedded platform the local profile's bounds stand in for the seed's.

A new row: add a :class:`Target` to ``TARGETS`` with the tag pattern of the tests that assert it, what to measure
and how to print its bound (``docs/load-and-report.md``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PlatformLibrary.core.profile import counted
from PlatformLibrary.core.stats import compute_percentile, defined_statistic, samples_needed
from robot.model import TagPatterns

PASS, FAIL, SKIPPED, NOT_RUN = "pass", "fail", "skipped", "not run"
SEED_PROFILE = "aws"
MESSAGE_WIDTH = 300


# ---------------------------------------------------------------------------------------------------------- values
def fmt_seconds(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.3f} s"


def fmt_value(value: float, unit: str) -> str:
    if unit == "s":
        return fmt_seconds(value)
    if unit == "ms":
        return fmt_seconds(value / 1000)
    if unit == "USD":
        return f"${value:.4f}"
    if unit == "%":
        return f"{value:.1f} %"
    return f"{value:g} {unit}".strip()


def percentile_text(pct: float, count: int, value: float, unit: str) -> str:
    """``p95 9.1 ms`` when ``count`` samples define the percentile, else ``max of 5: 720.0 ms`` (``value`` is then
    the max)."""
    if count >= samples_needed(pct):
        return f"p{pct:g} {fmt_value(value, unit)}"
    return f"max of {count}: {fmt_value(value, unit)}"


@dataclass
class Measured:
    """What a row measured: the text shown, the number (in ``unit``) and how many samples it stands on."""

    text: str
    value: float | None = None
    unit: str = ""
    samples: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"text": self.text, "value": self.value, "unit": self.unit, "samples": self.samples}


@dataclass
class Evidence:
    """The metric records and load runs written by a row's tests."""

    metrics: list[dict[str, Any]]
    loads: list[dict[str, Any]]

    def values(self, names: tuple[str, ...], unit: str) -> list[float]:
        """Values of the metrics ``names`` in ``unit``; of every metric in ``unit`` when ``names`` is empty."""
        return [
            float(r["value"])
            for r in self.metrics
            if (r.get("name") in names or not names)
            and r.get("unit", "s") == unit
            and isinstance(r.get("value"), int | float)
            and math.isfinite(r["value"])
        ]


# ---------------------------------------------------------------------------------------------------------- measures
def metric_percentile(names: tuple[str, ...], pct: float, unit: str = "s") -> Callable[[Evidence], Measured | None]:
    def measure(evidence: Evidence) -> Measured | None:
        values = evidence.values(names, unit)
        if not values:
            return None
        asserted, _ = defined_statistic(pct, len(values))
        value = min(compute_percentile(values, asserted), max(values))  # histogram rounding never above the max
        return Measured(percentile_text(pct, len(values), value, unit), value, unit, len(values))

    return measure


def metric_mean(names: tuple[str, ...], unit: str = "s") -> Callable[[Evidence], Measured | None]:
    def measure(evidence: Evidence) -> Measured | None:
        values = evidence.values(names, unit)
        if not values:
            return None
        value = sum(values) / len(values)
        return Measured(f"mean {fmt_value(value, unit)}", value, unit, len(values))

    return measure


def metric_max(names: tuple[str, ...], unit: str) -> Callable[[Evidence], Measured | None]:
    def measure(evidence: Evidence) -> Measured | None:
        values = evidence.values(names, unit)
        if not values:
            return None
        value = max(values)
        return Measured(f"{'max ' if len(values) > 1 else ''}{fmt_value(value, unit)}", value, unit, len(values))

    return measure


def _run_latency(run: dict[str, Any], pct: float) -> tuple[float, int]:
    """The ``pct`` latency (ms) of a load run, or its max when too few requests define it; and the count."""
    latency, count = run.get("latencyMs") or {}, int(run.get("completed") or 0)
    top = float(latency.get("max") or 0.0)
    if count < samples_needed(pct):
        return top, count
    return min(float(latency.get(f"p{pct:g}") or 0.0), top), count


def load_latency(pct: float) -> Callable[[Evidence], Measured | None]:
    """The worst ``pct`` latency over the row's load runs (each over its own requests)."""

    def measure(evidence: Evidence) -> Measured | None:
        runs = [r for r in evidence.loads if r.get("completed")]
        if not runs:
            return None
        worst = max(runs, key=lambda r: _run_latency(r, pct)[0])
        value, count = _run_latency(worst, pct)
        text = percentile_text(pct, count, value, "ms")
        if len(runs) > 1:
            text += f" (worst of {len(runs)} runs)"
        return Measured(text, value, "ms", sum(int(r["completed"]) for r in runs))

    return measure


def load_throughput(evidence: Evidence) -> Measured | None:
    """Answered ok per second of the schedule, the lowest over the row's load runs."""
    runs = [r for r in evidence.loads if r.get("durationS")]
    if not runs:
        return None
    rates = [(int(r.get("ok") or 0) / float(r["durationS"]), r) for r in runs]
    rate, run = min(rates, key=lambda item: item[0])
    text = f"{rate:.1f}/s ok ({run.get('ok')} of {run.get('scheduled')} scheduled in {float(run['durationS']):g} s)"
    return Measured(text, round(rate, 3), "/s", int(run.get("completed") or 0))


def load_stability(evidence: Evidence) -> Measured | None:
    """Each load run of the stress mix (reads, file operations, lifecycles): its p95 at its rate, then the errors
    and drops of all of them; the number is the reads' p95 (the first run), as the bound's first figure."""
    runs = [r for r in evidence.loads if r.get("completed")]
    if not runs:
        return None
    parts = []
    for run in runs:
        value, count = _run_latency(run, 95)
        rate = run.get("targetRate")
        at = f" at {float(rate):.3g}/s" if rate else ""
        parts.append(f"{run.get('name', 'load')}: {percentile_text(95, count, value, 'ms')}{at}")
    errors = sum(int(r.get("errors", 0) or 0) for r in runs)
    dropped = sum(int(r.get("dropped", 0) or 0) for r in runs)
    value, count = _run_latency(runs[0], 95)
    return Measured(f"{'; '.join(parts)}; {counted(errors, 'error')}, {dropped} dropped", value, "ms", count)


def load_concurrency(evidence: Evidence) -> Measured | None:
    """How many users worked at once in the row's load run, their p95 and errors."""
    runs = [r for r in evidence.loads if r.get("completed")]
    if not runs:
        return None
    run = max(runs, key=lambda r: int(r.get("users") or 0))
    value, count = _run_latency(run, 95)
    users, errors = counted(run.get("users"), "user"), counted(run.get("errors", 0), "error")
    text = f"{users} at once, {percentile_text(95, count, value, 'ms')}, {errors}"
    return Measured(text, float(run.get("users") or 0), "users", count)


def load_sessions_per_minute(evidence: Evidence) -> Measured | None:
    """Whole session cycles completed ok per minute of the schedule (the slowest run), and the cycle's p95."""
    runs = [r for r in evidence.loads if r.get("durationS")]
    if not runs:
        return None
    run = min(runs, key=lambda r: int(r.get("ok") or 0) / float(r["durationS"]))
    per_minute = int(run.get("ok") or 0) / float(run["durationS"]) * 60
    value, count = _run_latency(run, 95)
    text = (
        f"{per_minute:.1f}/min ({run.get('ok')} of {run.get('scheduled')} cycles ok), "
        f"cycle {percentile_text(95, count, value, 'ms')}"
    )
    return Measured(text, round(per_minute, 3), "/min", count)


def no_number(evidence: Evidence) -> Measured | None:
    """A yes/no target (orphan-free): no number, the tests' verdict says it all."""
    del evidence
    return None


# ---------------------------------------------------------------------------------------------------------- bounds
Bound = Callable[[dict[str, Any]], str | None]


def bound(template: str, *names: str) -> Bound:
    """``template`` filled with the profile's ``names`` (``{0}``, ``{1}`` ...); ``None`` when one is missing."""

    def text(profile: dict[str, Any]) -> str | None:
        if any(name not in profile for name in names):
            return None
        return template.format(*(profile[name] for name in names))

    return text


# ---------------------------------------------------------------------------------------------------------- targets
@dataclass(frozen=True)
class Target:
    key: str
    label: str
    tests: str  # tag pattern, Robot Framework's --include syntax
    measure: Callable[[Evidence], Measured | None]
    bound: Bound
    metrics: tuple[str, ...] = ()  # metric names the row reads (documentation and the JSON)

    def selects(self, tags: list[str]) -> bool:
        return TagPatterns([self.tests]).match(tags)


RECOVERY_BOUND = bound("< {0}", "SLA_RECOVERY_MAX")

TARGETS: tuple[Target, ...] = (
    Target(
        "cold-start",
        "Cold start",
        "cold-start",
        metric_percentile(("container_cold_start",), 99),
        bound("p99 < {0}", "SLA_COLD_START_P99"),
        ("container_cold_start",),
    ),
    Target(
        "warm-start",
        "Warm start",
        "warm-start",
        metric_percentile(("container_warm_start",), 95),
        bound("p95 < {0}", "SLA_WARM_START_P95"),
        ("container_warm_start",),
    ),
    Target(
        "session-creation",
        "Session creation",
        "session-creation",
        metric_mean(("session_creation",)),
        bound("mean < {0}", "SLA_CREATE_MEAN"),
        ("session_creation",),
    ),
    Target(
        "session-creation-max",
        "Session creation, every call",
        "session-creation",
        metric_max(("session_creation",), "s"),
        bound("each < {0}", "SLA_CREATE_MAX"),
        ("session_creation",),
    ),
    Target(
        "file-ops-p95",
        "File operations p95",
        "file-opsORfile-ops-rate",
        load_latency(95),
        bound("p95 < {0}", "SLA_FILE_OPS_P95"),
    ),
    Target(
        "file-ops-throughput",
        "File operations throughput",
        "file-ops-rate",
        load_throughput,
        bound("≥ {0}, under 1 % dropped", "FILE_OPS_RATE"),
    ),
    Target("api-p95", "API response p95", "api-response", load_latency(95), bound("p95 < {0}", "SLA_API_P95")),
    Target(
        "cpu",
        "CPU utilisation",
        "utilisation",
        metric_max(("utilisation_cpuPercent",), "%"),
        bound("< {0} %", "CPU_UTILISATION_MAX_PERCENT"),
        ("utilisation_cpuPercent",),
    ),
    Target(
        "cpu-during-scaling",
        "CPU utilisation during scaling",
        "utilisation-during-scaling",
        metric_max(("utilisation_cpuPercent", "utilisation_hostCpuPercent"), "%"),
        bound("< {0} % through a scale-out", "CPU_UTILISATION_MAX_PERCENT"),
        ("utilisation_cpuPercent", "utilisation_hostCpuPercent"),
    ),
    Target(
        "efs-throughput-while-scaling",
        "Workspace (EFS) throughput while scaling",
        "efs-throughput",
        load_throughput,
        bound("≥ {0} while sessions start, p95 < {1}", "SCALING_IO_THROUGHPUT_MIN", "SLA_FILE_OPS_P95"),
    ),
    Target(
        "memory",
        "Memory utilisation",
        "utilisation",
        metric_max(("utilisation_memoryPercent",), "%"),
        bound("< {0} %", "MEMORY_UTILISATION_MAX_PERCENT"),
        ("utilisation_memoryPercent",),
    ),
    Target(
        "recovery-container-crash",
        "Recovery: container crash",
        "container-crashORdata-consistency",
        metric_max(("recovery_time",), "s"),
        RECOVERY_BOUND,
        ("recovery_time",),
    ),
    Target(
        "recovery-partition",
        "Recovery: network partition",
        "network-partition",
        metric_max(("partition_recovery_time", "store_recovery_time"), "s"),
        RECOVERY_BOUND,
        ("partition_recovery_time", "store_recovery_time"),
    ),
    Target(
        "recovery-store-outage",
        "Recovery: store (DynamoDB) outage",
        "aws-unavailable",
        metric_max(("store_recovery_time",), "s"),
        RECOVERY_BOUND,
        ("store_recovery_time",),
    ),
    Target(
        "recovery-circuit-close",
        "Recovery: circuit closes",
        "circuit-breaker",
        metric_max(("circuit_close_time",), "s"),
        RECOVERY_BOUND,
        ("circuit_close_time",),
    ),
    Target(
        "recovery-load-balancer",
        "Recovery: API target or load balancer fails",
        "load-balancer",
        metric_max(("api_target_recovery_time", "load_balancer_recovery_time"), "s"),
        RECOVERY_BOUND,
        ("api_target_recovery_time", "load_balancer_recovery_time"),
    ),
    Target(
        "stable-3x-load",
        "Stable at 3x load",
        "three-times-load",
        load_stability,
        bound(
            "{0} x the normal mix: p95 < {1} (reads), < {2} (files), < {3} (lifecycles), errors < {4}",
            "STRESS_LOAD_FACTOR",
            "SLA_STRESS_API_P95",
            "SLA_STRESS_MIX_FILE_OPS_P95",
            "SLA_SESSION_CYCLE_P95",
            "LOAD_ERROR_RATE_MAX",
        ),
    ),
    Target(
        "concurrent-sessions",
        "Concurrent sessions",
        "concurrent-sessions",
        load_concurrency,
        bound("≥ {0} users at once, p95 < {1}, no error", "CONCURRENT_USERS", "SLA_STRESS_FILE_OPS_P95"),
    ),
    Target(
        "sessions-per-minute",
        "Sessions per minute",
        "sessions-per-minute",
        load_sessions_per_minute,
        bound("{0} sustained, cycle p95 < {1}", "SUSTAINED_SESSION_RATE", "SLA_SESSION_CYCLE_P95"),
    ),
    Target(
        "orphan-free",
        "Orphan-free",
        "orphan-cleanup",
        no_number,
        lambda profile: "no container without a live session",
    ),
    Target(
        "cost",
        "Cost per session",
        "cost",
        metric_max(("session_cost",), "USD"),  # suites/performance/session_cost.robot: a typical session's cost
        lambda profile: (
            f"< ${float(profile['COST_BUDGET_PER_SESSION']):.2f}" if "COST_BUDGET_PER_SESSION" in profile else None
        ),
        ("session_cost",),
    ),
)


# ---------------------------------------------------------------------------------------------------------- verdicts
def _first_line(message: str) -> str:
    text = (message or "").strip().splitlines()
    return text[0][:MESSAGE_WIDTH] if text else ""


def row_verdict(tests: list[dict[str, Any]]) -> tuple[str, str]:
    """The verdict of a row from its tests' statuses, and the note that explains it."""
    if not tests:
        return NOT_RUN, ""
    failed = [t for t in tests if t["status"] == "FAIL"]
    skipped = [t for t in tests if t["status"] == "SKIP"]
    passed = [t for t in tests if t["status"] == "PASS"]
    of = f" of {len(tests)}" if len(tests) > 1 else ""
    if failed:
        if len(tests) == 1:
            return FAIL, _first_line(failed[0]["message"])
        return FAIL, f"{len(failed)}{of} tests failed: " + "; ".join(
            f"{t['name']}: {_first_line(t['message'])}" for t in failed
        )
    if skipped:
        head = f"{len(skipped)}{of} tests skipped: " if len(tests) > 1 else "Skipped: "
        return SKIPPED, head + "; ".join(_first_line(t["message"]) or t["name"] for t in skipped)
    if passed and len(passed) == len(tests):
        return PASS, ""
    return NOT_RUN, "its tests did not run (status NOT RUN)"


def build_scorecard(
    tests: list[dict[str, Any]] | None,
    metrics: list[dict[str, Any]],
    loads: list[dict[str, Any]],
    profile: dict[str, Any],
    seed: dict[str, Any],
    log_name: str = "log.html",
    notes: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The scorecard's JSON: the overall verdict and one row per target.

    ``tests``: every test of output.xml as ``{"name", "longName", "id", "status", "message", "tags"}`` (``None``
    when there is no output.xml); ``metrics``/``loads``: every metric record and load-run summary; ``profile`` and
    ``seed``: the variables of the run's profile and of the seed's (AWS) profile; ``notes``: extra text per row key.
    """
    rows = []
    mapped: set[str] = set()
    for target in TARGETS:
        own = [t for t in (tests or []) if target.selects(t["tags"])]
        names = {t["longName"] for t in own}
        mapped |= names
        evidence = Evidence(
            [r for r in metrics if r.get("test") in names],
            [r for r in loads if r.get("test") in names],
        )
        measured = target.measure(evidence)
        verdict, note = row_verdict(own)
        extra = (notes or {}).get(target.key)
        rows.append(
            {
                "key": target.key,
                "target": target.label,
                "tests": target.tests,
                "metrics": list(target.metrics),
                "measured": measured.as_dict() if measured else None,
                "samples": measured.samples if measured else None,
                "profileBound": target.bound(profile),
                "seedBound": target.bound(seed),
                "verdict": verdict,
                "note": "; ".join(n for n in (note, extra) if n),
                "testResults": [
                    {
                        "name": t["name"],
                        "longName": t["longName"],
                        "id": t["id"],
                        "status": t["status"],
                        "link": f"{log_name}#{t['id']}",
                    }
                    for t in own
                ],
            }
        )
    counts = {v: sum(1 for r in rows if r["verdict"] == v) for v in (PASS, FAIL, SKIPPED, NOT_RUN)}
    failed_outside = [t for t in (tests or []) if t["status"] == "FAIL" and t["longName"] not in mapped]
    if tests is None:
        verdict = "INCOMPLETE"
    elif counts[FAIL] or failed_outside:
        verdict = "FAIL"
    elif counts[SKIPPED] or counts[NOT_RUN]:
        verdict = "INCOMPLETE"
    else:
        verdict = "PASS"
    return {
        "verdict": verdict,
        "summary": summary_text(len(rows), counts, len(failed_outside), tests is None),
        "counts": {"pass": counts[PASS], "fail": counts[FAIL], "skipped": counts[SKIPPED], "notRun": counts[NOT_RUN]},
        "failedOutsideScorecard": len(failed_outside),
        "profile": profile.get("PROFILE"),
        "seedProfile": seed.get("PROFILE", SEED_PROFILE),
        "standIn": profile.get("PROFILE") != seed.get("PROFILE", SEED_PROFILE),
        "rows": rows,
    }


def summary_text(total: int, counts: dict[str, int], failed_outside: int, no_results: bool) -> str:
    if no_results:
        return f"No test results (no output.xml): none of the {total} targets has a verdict."
    parts = [f"{counts[PASS]} passed"]
    parts += [
        f"{counts[k]} {label}"
        for k, label in ((FAIL, "failed"), (SKIPPED, "skipped"), (NOT_RUN, "not run"))
        if counts[k]
    ]
    text = f"{total} targets of the seed: {', '.join(parts)}."
    if failed_outside:
        text += f" {failed_outside} failed test{'s' if failed_outside > 1 else ''} outside the scorecard."
    return text
