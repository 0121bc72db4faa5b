"""PlatformLibrary session store keywords against moto's DynamoDB."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "libraries"))

from PlatformLibrary import PlatformLibrary
from PlatformLibrary.core.endpoints import Endpoints
from PlatformLibrary.core.profile import Profile

TABLE = "unit-sessions"


@pytest.fixture
def library(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    (tmp_path / "endpoints.json").write_text(
        json.dumps({"SESSIONS_TABLE": TABLE, "AWS_REGION": "us-east-1", "DYNAMODB_ENDPOINT_URL": None})
    )
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE,
            AttributeDefinitions=[{"AttributeName": "sessionId", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "sessionId", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        client.put_item(
            TableName=TABLE,
            Item={
                "sessionId": {"S": "s-1"},
                "status": {"S": "RUNNING"},
                "restartCount": {"N": "1"},
                "startDurationMs": {"N": "412.5"},
                "lastFailureReason": {"S": "container exited on SIGKILL"},
            },
        )
        lib = PlatformLibrary(run_id="unit")
        lib.profile = Profile(variables={"TARGET": "embedded", "PLATFORM_STATE_DIR": str(tmp_path)})
        lib.endpoints = Endpoints(lib.profile)
        yield lib


def test_get_session_record_converts_numbers(library):
    record = library.keywords["get_session_record"]({"sessionId": "s-1"})
    assert record["restartCount"] == 1 and isinstance(record["restartCount"], int)
    assert record["startDurationMs"] == 412.5
    assert record["status"] == "RUNNING"


def test_missing_record_fails_clearly(library):
    with pytest.raises(AssertionError, match="Table unit-sessions has no record for session s-404"):
        library.keywords["get_session_record"]("s-404")


def test_session_record_should_have_compares_as_text(library):
    library.keywords["session_record_should_have"]("s-1", status="RUNNING", restartCount="1")


def test_session_record_should_have_names_field_expected_and_actual(library):
    with pytest.raises(AssertionError) as failure:
        library.keywords["session_record_should_have"]("s-1", status="FAILED", restartCount="2", owner="x")
    message = str(failure.value)
    assert "field 'status': expected 'FAILED', actual 'RUNNING'" in message
    assert "field 'restartCount': expected '2', actual 1" in message
    assert "field 'owner': expected 'x', but the field is missing" in message


def test_field_should_contain(library):
    library.keywords["session_record_should_have"]("s-1", match="contain", lastFailureReason="sigkill")
    with pytest.raises(AssertionError, match="expected it to contain 'SIGTERM'"):
        library.keywords["session_record_should_have"]("s-1", match="contain", lastFailureReason="SIGTERM")


def test_bad_session_argument(library):
    with pytest.raises(ValueError, match="session id or a session object"):
        library.keywords["get_session_record"]("  ")


def test_record_is_deleted_behind_the_platforms_back_only_for_sessions_of_this_run(library):
    delete = library.keywords["Delete Session Record Behind The Platform's Back"]
    with pytest.raises(AssertionError, match="s-1 was not created by this run; its record is left alone"):
        delete("s-1")
    library.keywords["get_session_record"]("s-1")  # untouched
    library.tracker.add("test:unit", "s-1")
    delete({"sessionId": "s-1"})
    with pytest.raises(AssertionError, match="no record for session s-1"):
        library.keywords["get_session_record"]("s-1")


@pytest.mark.parametrize(
    ("variables", "reason"),
    [
        ({"CHAOS_ALLOWED": "false"}, "does not allow chaos"),
        ({"TARGET": "aws", "CHAOS_ALLOWED": "true", "ENVIRONMENT_NAME": "production"}, "looks like production"),
    ],
)
def test_deleting_a_record_behind_the_platforms_back_passes_the_chaos_guard(library, tmp_path, variables, reason):
    """A destructive keyword is a fault: with chaos not allowed it refuses (a skip in Robot) and deletes nothing."""
    from PlatformLibrary.aws.safety import ChaosNotAllowed

    base = {"TARGET": "embedded", "PLATFORM_STATE_DIR": str(tmp_path)}
    library.profile = Profile(variables={**base, **variables})
    library.tracker.add("test:unit", "s-1")
    with pytest.raises(ChaosNotAllowed, match=reason) as refused:
        library.keywords["Delete Session Record Behind The Platform's Back"]("s-1")
    assert getattr(refused.value, "ROBOT_SKIP_EXECUTION", False) is True
    library.profile = Profile(variables=base)
    assert library.keywords["get_session_record"]("s-1")["status"] == "RUNNING"  # untouched
