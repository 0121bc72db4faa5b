"""Profiles and profile access: both profiles define the same names; values convert with clear errors."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "libraries"))

from PlatformLibrary.core.context import RunContext
from PlatformLibrary.core.profile import Profile, ProfileError, to_seconds
from PlatformLibrary.core.waiting import WaitTimeout, wait_until

PROFILES = Path(__file__).resolve().parents[1] / "resources" / "profiles"


def load(name: str) -> dict:
    spec = importlib.util.spec_from_file_location(f"profile_{name}", PROFILES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    # Robot Framework imports neither names starting with an underscore nor modules: only public constants count.
    return {k: v for k, v in vars(module).items() if k.isupper() and not k.startswith("_")}


def test_aws_profile_overrides_every_local_name():
    local, aws = load("local"), load("aws")
    missing = sorted(set(local) - set(aws))
    assert not missing, f"aws.py must define {missing} so local values never leak into an AWS run"


@pytest.mark.parametrize("name", ["local", "aws"])
def test_profile_times_and_slas_parse(name):
    values = load(name)
    for key, value in values.items():
        if key.startswith("SLA_") or key.endswith(("_TIMEOUT", "_INTERVAL")):
            assert to_seconds(value, key) > 0, key
    assert values["PROFILE"] == name


def test_local_slas_are_tighter_than_aws():
    local, aws = load("local"), load("aws")
    for key in (k for k in local if k.startswith("SLA_")):
        assert to_seconds(local[key]) < to_seconds(aws[key]), key


def test_seed_slas_in_aws_profile():
    aws = load("aws")
    assert to_seconds(aws["SLA_COLD_START_P99"]) == 60
    assert to_seconds(aws["SLA_WARM_START_P95"]) == 5
    assert to_seconds(aws["SLA_CREATE_MEAN"]) == 2
    assert to_seconds(aws["SLA_FILE_OPS_P95"]) == 1
    assert to_seconds(aws["SLA_API_P95"]) == 0.5
    assert to_seconds(aws["SLA_RECOVERY_MAX"]) == 120


def test_profile_access_and_errors():
    profile = Profile({"TARGET": "aws"}, variables={"SESSION_START_TIMEOUT": "2 min", "COUNT": "x", "TARGET": "local"})
    assert profile.seconds("SESSION_START_TIMEOUT") == 120
    assert profile.target == "aws"  # overrides win over variables
    assert not profile.is_embedded
    with pytest.raises(ProfileError, match=r"\$\{SLA_NOPE\} is not set"):
        profile.get("SLA_NOPE")
    with pytest.raises(ProfileError, match="must be an integer"):
        profile.integer("COUNT")
    with pytest.raises(ProfileError, match="must be a time"):
        to_seconds("soon", "timeout")
    assert Profile(variables={}).seconds("POLL_INTERVAL") == 0.05  # library default


def test_unique_names_are_valid_ids_and_differ():
    context = RunContext("run!42")
    names = {context.unique_name("qa-user") for _ in range(50)}
    assert len(names) == 50
    for name in names:
        assert 1 <= len(name) <= 64
        assert all(c.isalnum() or c in "_.-" for c in name), name
        assert "run42" in name


def test_wait_until_reports_time_and_state():
    calls = iter([None, None, "done"])
    waited = wait_until(lambda: next(calls), timeout=1, interval=0.001, describe=lambda: "state")
    assert waited.value == "done" and waited.attempts == 3
    with pytest.raises(WaitTimeout, match=r"still STARTING \(waited .*deadline 50\.0 ms"):
        wait_until(lambda: None, timeout=0.05, interval=0.01, describe=lambda: "still STARTING")
    with pytest.raises(AssertionError, match="became FAILED"):
        wait_until(lambda: None, timeout=5, interval=0.01, describe=str, fail_fast=lambda: "became FAILED")


def test_an_empty_api_url_on_aws_names_the_environment_variable_to_set():
    from PlatformLibrary.core.endpoints import Endpoints, EndpointsError

    endpoints = Endpoints(Profile(variables={"TARGET": "aws", "PROFILE": "aws", "PLATFORM_API_URL": ""}))
    with pytest.raises(EndpointsError, match=r"set the environment variable ALB_URL .* --variable PLATFORM_API_URL"):
        endpoints.get("PLATFORM_API_URL")


def test_stress_bounds_are_tied_to_the_normal_slas() -> None:
    """'Stable at 3x load' is held to the normal p95 bounds times STRESS_SLA_FACTOR, on every profile."""
    import runpy

    for name in ("local", "aws", "aws_emulated", "aws_minimal"):
        values = runpy.run_path(str(Path(__file__).resolve().parents[1] / "resources" / "profiles" / f"{name}.py"))
        factor = values["STRESS_SLA_FACTOR"]
        for stress, normal in (
            ("SLA_STRESS_API_P95", "SLA_API_P95"),
            ("SLA_STRESS_MIX_FILE_OPS_P95", "SLA_FILE_OPS_P95"),
        ):
            assert to_seconds(values[stress]) == pytest.approx(factor * to_seconds(values[normal])), (name, stress)
