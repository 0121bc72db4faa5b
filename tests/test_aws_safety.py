"""Safety guards as plain functions and keywords: who may inject chaos, production names, run tags, redaction."""

from __future__ import annotations

import pytest
from PlatformLibrary.aws.safety import (
    RUN_TAG_KEY,
    ChaosGuard,
    ChaosRefused,
    is_tagged_with_run,
    looks_like_production,
    parse_flag,
    run_tags,
    tags_as_dict,
)
from PlatformLibrary.aws.session import redact
from robot.api.types import Secret

from tests.test_aws_support import AWS_VALUES, make_library

AWS = {key: AWS_VALUES[key] for key in ("TARGET", "CHAOS_ALLOWED", "ENVIRONMENT_NAME", "ECS_CLUSTER", "ECS_SERVICE")}


@pytest.mark.parametrize(
    "name",
    ["prod", "Production", "PRD", "prod-eu-1", "eu-prod", "sessions_prod", "team.prd.01", "my prod env"],
)
def test_production_names_are_recognised(name):
    assert looks_like_production(name)


@pytest.mark.parametrize(
    "name", ["", "staging", "preprod", "nonprod", "product-demo", "prodigy", "reproduce", "dev-eu", "sprd", "qa"]
)
def test_other_names_are_not_production(name):
    assert not looks_like_production(name)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        ("true", True),
        ("Yes", True),
        ("1", True),
        ("off", False),
        ("", False),
        (None, False),
    ],
)
def test_flags_parse_strictly(value, expected):
    assert parse_flag(value, "X") is expected


def test_unclear_flag_is_refused_not_guessed():
    with pytest.raises(ChaosRefused, match=r"\$\{CHAOS_ALLOWED\} must be true or false"):
        parse_flag("maybe", "CHAOS_ALLOWED")


def test_secret_flag_is_unwrapped():
    assert parse_flag(Secret("true"), "X") is True


def test_chaos_is_refused_unless_allowed():
    guard = ChaosGuard.from_values({**AWS, "CHAOS_ALLOWED": False})
    assert "does not allow chaos" in guard.refusal()
    with pytest.raises(ChaosRefused, match="Refused to stress the CPU: the profile does not allow chaos"):
        guard.check("stress the CPU")


def test_aws_profile_without_chaos_allowed_refuses_by_default():
    values = {k: v for k, v in AWS.items() if k != "CHAOS_ALLOWED"}
    assert not ChaosGuard.from_values(values).as_dict()["allowed"]


def test_allowed_staging_passes():
    guard = ChaosGuard.from_values(AWS)
    assert guard.refusal() is None
    guard.check("anything")


@pytest.mark.parametrize(
    "override",
    [{"ENVIRONMENT_NAME": "prod"}, {"ENVIRONMENT_NAME": "EU-Production"}, {"ECS_CLUSTER": "sessions-prd"}],
)
def test_production_is_refused_unless_forced(override):
    values = {**AWS, **override}
    refused = ChaosGuard.from_values(values)
    assert "looks like production" in refused.refusal()
    assert "FORCE_CHAOS_IN_PRODUCTION" in refused.refusal()
    forced = ChaosGuard.from_values({**values, "FORCE_CHAOS_IN_PRODUCTION": "true"})
    assert forced.refusal() is None


def test_force_does_not_override_chaos_allowed():
    values = {**AWS, "ENVIRONMENT_NAME": "prod", "CHAOS_ALLOWED": False, "FORCE_CHAOS_IN_PRODUCTION": True}
    assert "does not allow chaos" in ChaosGuard.from_values(values).refusal()


def test_unnamed_aws_environment_is_refused():
    guard = ChaosGuard.from_values({**AWS, "ENVIRONMENT_NAME": ""})
    assert "ENVIRONMENT_NAME} is empty" in guard.refusal()


def test_embedded_target_allows_chaos_by_default_and_can_switch_it_off():
    assert ChaosGuard.from_values({"TARGET": "embedded"}).refusal() is None
    assert ChaosGuard.from_values({"TARGET": "embedded", "CHAOS_ALLOWED": "false"}).refusal() is not None


def test_dry_run_flag_is_part_of_the_decision():
    decision = ChaosGuard.from_values({**AWS, "CHAOS_DRY_RUN": "true"}).as_dict()
    assert decision["dryRun"] is True and decision["allowed"] is True


def test_keywords_read_the_profile():
    library = make_library(ENVIRONMENT_NAME="production")
    decision = library.keywords["get_chaos_guard"]()
    assert decision["allowed"] is False and "production" in decision["reason"]
    with pytest.raises(ChaosRefused, match="Refused to kill a task"):
        library.keywords["chaos_should_be_allowed"]("kill a task")
    make_library().keywords["chaos_should_be_allowed"]()


def test_run_tags_and_matching():
    tags = run_tags("run1", "w0", test="Suite.Test", empty="")
    assert tags == {RUN_TAG_KEY: "run1", "created-by": "PlatformLibrary", "suite-worker": "w0", "test": "Suite.Test"}
    assert is_tagged_with_run(tags, "run1")
    assert is_tagged_with_run([{"key": RUN_TAG_KEY, "value": "run1"}], "run1")
    assert is_tagged_with_run([{"Key": RUN_TAG_KEY, "Value": "run1"}], "run1")
    assert not is_tagged_with_run(tags, "run2")
    assert not is_tagged_with_run({}, "run1")
    assert not is_tagged_with_run(tags, "")
    assert tags_as_dict(None) == {}
    assert len(run_tags("r", test="x" * 400)["test"]) == 256


def test_redaction_hides_secrets_keys_and_url_credentials():
    logged = redact(
        {
            "SecretAccessKey": "abc",
            "sessionToken": "tok",
            "nested": [{"password": "p", "note": "key AKIAABCDEFGHIJKLMNOP in text"}],
            "url": "http://user:pass@toxiproxy:8474/proxies",
            "secret": Secret("s"),
            "plain": "value",
            "number": 3,
        }
    )
    assert logged["SecretAccessKey"] == logged["sessionToken"] == "<redacted>"
    assert logged["nested"][0]["password"] == "<redacted>"
    assert "AKIA" not in logged["nested"][0]["note"]
    assert logged["url"] == "http://<redacted>@toxiproxy:8474/proxies"
    assert logged["secret"] == "<redacted>"
    assert logged["plain"] == "value" and logged["number"] == 3
