"""The verdict of `Durations Under Fault Should Stay Within`: both bounds, the same-run reference, the messages."""

from __future__ import annotations

import pytest
from PlatformLibrary.faults.checks import stopwatch_verdict


def test_faulted_durations_within_reference_plus_delay_and_allowance_pass() -> None:
    message, measured, summary = stopwatch_verdict([0.65] * 20, [0.04] * 20, 0.6, 0.5, 95, "Request")
    assert message is None
    assert measured == pytest.approx(0.65)
    assert "p95 over 20 samples" in summary and "at least the fault's" in summary


def test_upper_bound_names_reference_delay_and_allowance() -> None:
    message, _, _ = stopwatch_verdict([1.3] * 20, [0.04] * 20, 0.6, 0.5, 95, "Request")
    assert message is not None
    assert "allowed is below 1.140 s" in message
    assert "reference p95 over 20 samples 40.0 ms + the fault's added 600.0 ms + the allowance 500.0 ms" in message


def test_lower_bound_fails_when_a_request_missed_the_fault() -> None:
    message, _, _ = stopwatch_verdict([0.61] * 19 + [0.05], [0.04] * 20, 0.6, 0.5, 95, "Request")
    assert message is not None and "did not act on every request" in message


def test_too_few_samples_assert_the_maximum() -> None:
    message, measured, _ = stopwatch_verdict([0.1, 0.2, 0.9], [0.1, 0.1, 0.1], 0.0, 0.5, 95, "Round trip")
    assert measured == pytest.approx(0.9)
    assert message is not None and "max over 3 samples (p95 needs 20)" in message


def test_p80_over_five_tolerates_one_outlier() -> None:
    message, measured, _ = stopwatch_verdict([0.35, 0.36, 0.37, 0.38, 2.0], [0.1] * 5, 0.3, 0.25, 80, "Create")
    assert message is None and measured == pytest.approx(0.38)


def test_no_durations_is_an_error_not_a_pass() -> None:
    with pytest.raises(ValueError):
        stopwatch_verdict([], [0.1], 0.0, 0.5, 95, "Round trip")
