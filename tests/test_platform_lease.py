"""Two runners on two machines against one deployment take turns: the DynamoDB lease (moto) behind Acquire
Platform Access when ``${PLATFORM_LOCK_TABLE}`` is set."""

from __future__ import annotations

import threading
import time

import boto3
import pytest
from moto import mock_aws
from PlatformLibrary.sessions.access import DynamoDbLease

TABLE = "platform-locks"


@pytest.fixture
def client(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(
            TableName=TABLE,
            AttributeDefinitions=[{"AttributeName": "lockId", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "lockId", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield dynamodb


def runner(client, name: str, lease: float = 600) -> DynamoDbLease:
    return DynamoDbLease(client, TABLE, "sessions/session-service", f"{name}:1:run", lease)


def test_shared_holders_share_and_an_exclusive_one_waits_for_them(client):
    first, second, disruptive = runner(client, "ci-a"), runner(client, "ci-b"), runner(client, "ci-c")
    first.acquire("shared", 1)
    second.acquire("shared", 1)  # ordinary tests of two runners run side by side
    with pytest.raises(TimeoutError, match=r"shared by ci-[ab]:1:run, ci-[ab]:1:run \(lock table platform-locks\)"):
        disruptive.acquire("exclusive", 0.2, 0.02)
    assert disruptive.mode is None
    first.release()
    second.release()
    assert disruptive.acquire("exclusive", 1, 0.02) >= 0
    with pytest.raises(TimeoutError, match="ci-c:1:run holds it"):
        first.acquire("shared", 0.2, 0.02)  # nobody shares while it is held alone
    with pytest.raises(TimeoutError, match="holds it"):
        second.acquire("exclusive", 0.2, 0.02)
    assert disruptive.release() is True
    assert first.acquire("shared", 1) >= 0


def test_a_waiting_exclusive_taker_holds_back_new_shared_ones(client):
    reader, writer, late = runner(client, "a"), runner(client, "b"), runner(client, "c")
    reader.acquire("shared", 1)
    taken = {}
    thread = threading.Thread(target=lambda: taken.setdefault("s", writer.acquire("exclusive", 5, 0.02)))
    thread.start()
    time.sleep(0.3)  # the writer has written its intent and waits for the reader
    with pytest.raises(TimeoutError):
        late.acquire("shared", 0.2, 0.02)
    reader.release()
    thread.join(5)
    assert writer.mode == "exclusive" and taken["s"] >= 0.2


def test_a_dead_runners_lease_runs_out(client):
    dead = runner(client, "dead", lease=0.2)
    dead.acquire("exclusive", 1)  # and never releases: the machine went away
    alive = runner(client, "alive")
    assert alive.acquire("exclusive", 2, 0.05) >= 0.1
    assert dead.release() is True  # its stale delete must not remove the new holder's item
    with pytest.raises(TimeoutError, match="alive:1:run holds it"):
        runner(client, "third").acquire("shared", 0.2, 0.02)


def test_on_aws_with_a_lock_table_the_access_keywords_use_the_lease(client, tmp_path):
    from PlatformLibrary import PlatformLibrary
    from PlatformLibrary.core.endpoints import Endpoints
    from PlatformLibrary.core.profile import Profile

    library = PlatformLibrary(run_id="lease")
    library.profile = Profile(
        variables={"TARGET": "aws", "PROFILE": "aws", "PLATFORM_LOCK_TABLE": TABLE, "AWS_REGION": "us-east-1",
                   "ECS_CLUSTER": "sessions", "ECS_SERVICE": "session-service", "PLATFORM_STATE_DIR": str(tmp_path)}
    )  # fmt: skip
    library.endpoints = Endpoints(library.profile)
    library.keywords["acquire_platform_access"]("shared")
    items = client.scan(TableName=TABLE)["Items"]
    assert [i["lockId"]["S"].split("#")[:2] for i in items] == [["sessions/session-service", "shared"]]
    library.keywords["release_platform_access"]()
    assert client.scan(TableName=TABLE)["Items"] == []
