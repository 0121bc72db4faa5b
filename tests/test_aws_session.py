"""boto3 plumbing (one session, standard retries, default credential chain) and secrets never in the logs."""

from __future__ import annotations

from datetime import timedelta

import robot.api.logger
from botocore.exceptions import ClientError
from PlatformLibrary.aws.session import AwsClients, AwsError, AwsSettings, call, clients_for, describe_error

from tests.test_aws_support import REGION, Deployment, make_library, mocked_aws
from tests.test_aws_support import use_fake_credentials as _use_fake_credentials

SECRETS = ("AKIAABCDEFGHIJKLMNOP", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY", "FwoGZXIvYXdzEXAMPLESESSIONTOKEN")


def test_settings_from_the_aws_profile(monkeypatch):
    _use_fake_credentials(monkeypatch)
    library = make_library(AWS_PROFILE="")
    settings = clients_for(library).settings
    assert settings == AwsSettings(region=REGION, profile_name=None, embedded=False)
    assert clients_for(library) is clients_for(library)  # one session and its clients while settings hold
    library.profile._variables["AWS_REGION"] = "eu-west-1"
    assert clients_for(library).settings.region == "eu-west-1"


def test_clients_use_standard_retries_and_the_region(monkeypatch):
    _use_fake_credentials(monkeypatch)
    client = AwsClients(AwsSettings(region="eu-central-1")).client("ecs")
    assert client.meta.region_name == "eu-central-1"
    assert client.meta.config.retries["mode"] == "standard"
    assert "PlatformLibrary" in client.meta.config.user_agent_extra


def test_credentials_come_from_the_default_chain(monkeypatch):
    _use_fake_credentials(monkeypatch)
    credentials = AwsClients(AwsSettings(region=REGION)).session.get_credentials()
    assert credentials.method == "env"


def test_unknown_shared_config_profile_fails_clearly(monkeypatch):
    _use_fake_credentials(monkeypatch)
    library = make_library(AWS_PROFILE="no-such-profile")
    try:
        clients_for(library).client("ecs")
    except AwsError as error:
        assert "AWS profile 'no-such-profile'" in str(error)
    else:
        raise AssertionError("expected AwsError")


def test_empty_region_is_refused(monkeypatch):
    _use_fake_credentials(monkeypatch)
    try:
        clients_for(make_library(AWS_REGION=""))
    except AwsError as error:
        assert "AWS_REGION" in str(error)
    else:
        raise AssertionError("expected AwsError")


def test_embedded_target_points_at_the_platforms_moto(tmp_path):
    (tmp_path / "endpoints.json").write_text(
        '{"AWS_REGION": "us-east-1", "CLOUDWATCH_ENDPOINT_URL": "http://127.0.0.1:1", '
        '"DYNAMODB_ENDPOINT_URL": "http://127.0.0.1:2"}'
    )
    library = make_library(TARGET="embedded", PROFILE="local", PLATFORM_STATE_DIR=str(tmp_path))
    clients = clients_for(library)
    assert clients.settings.embedded
    assert clients.client("cloudwatch").meta.endpoint_url == "http://127.0.0.1:1"
    assert clients.client("dynamodb").meta.endpoint_url == "http://127.0.0.1:2"
    assert clients.session.get_credentials().access_key == "testing"


def test_errors_say_what_failed_without_request_details():
    error = ClientError({"Error": {"Code": "AccessDenied", "Message": "not allowed for AKIAABCDEFGHIJKLMNOP"}}, "X")
    assert describe_error(error) == "AccessDenied: not allowed for <redacted>"


def test_no_key_or_token_reaches_the_log(monkeypatch):
    """Run AWS keywords with secret-looking credentials in the default chain and read every log line."""
    _use_fake_credentials(monkeypatch)
    access_key, secret_key, token = SECRETS
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret_key)
    monkeypatch.setenv("AWS_SESSION_TOKEN", token)
    lines: list[str] = []
    monkeypatch.setattr(robot.api.logger, "write", lambda msg, *args, **kwargs: lines.append(str(msg)))
    with mocked_aws():
        deployment = Deployment()
        deployment.run_task("s-1")
        library = make_library(CHAOS_DRY_RUN=True, FIS_STOP_ALARM_ARN="")
        library.tracker.add("library", "s-1")
        library.keywords["get_aws_caller_identity"]()
        library.keywords["get_chaos_guard"]()
        library.keywords["create_fis_experiment_template"]("task-cpu-stress", "s-1", duration=timedelta(minutes=1))
        library.keywords["get_session_task"]("s-1")
        try:
            call(clients_for(library).client("ecs"), "describe_tasks", "Reading a task", cluster="nope", tasks=["x"])
        except AwsError as error:  # the message of a failed call goes to the log too
            lines.append(str(error))
    text = "\n".join(lines)
    assert "DRY RUN" in text and "Acting as" in text
    for secret in SECRETS:
        assert secret not in text
