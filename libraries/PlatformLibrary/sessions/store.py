"""Keywords that read session records straight from DynamoDB, bypassing the API, to cross-check it."""

from __future__ import annotations

import time
import uuid
from decimal import Decimal
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from robot.api.deco import keyword

from ..aws.safety import check_chaos_allowed
from ..aws.session import clients_for
from ..core.base import LibraryComponent, LibraryContext
from ..core.contract import ApiContract
from .api import Match, SessionRef, assert_fields

# Credentials for the embedded platform's moto server; moto accepts any. Never used against AWS.
_EMBEDDED_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def plain(value: Any) -> Any:
    """DynamoDB numbers come back as ``Decimal``; turn them into ``int``/``float`` for comparisons."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, set):
        return sorted(plain(v) for v in value)
    return value


class SessionStore:
    """Thin DynamoDB reader for the sessions table (consistent reads, key schema discovered once)."""

    def __init__(
        self,
        table: str,
        region: str,
        endpoint_url: str | None = None,
        embedded: bool = False,
        session: boto3.Session | None = None,
    ):
        if not table:
            raise ValueError("The sessions table name is empty.")
        kwargs: dict[str, Any] = {
            "region_name": region,
            "config": Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5, read_timeout=10),
        }
        if endpoint_url:
            kwargs["endpoint_url"] = endpoint_url
        if embedded:
            kwargs.update(_EMBEDDED_CREDENTIALS)
        self.table = table
        # On AWS the library's shared session (its AWS_PROFILE and default credential chain); same code otherwise.
        self.client = (session.client if session is not None else boto3.client)("dynamodb", **kwargs)
        self._key_name: str | None = None
        self._deserializer = TypeDeserializer()
        self.contract: ApiContract | None = None  # how the deployment names record attributes (API_CONTRACT_FILE)

    @property
    def key_name(self) -> str:
        if self._key_name is None:
            schema = self.client.describe_table(TableName=self.table)["Table"]["KeySchema"]
            hash_keys = [k["AttributeName"] for k in schema if k["KeyType"] == "HASH"]
            if len(schema) != 1 or not hash_keys:
                raise RuntimeError(f"Table {self.table} has key schema {schema}; expected a single hash key.")
            self._key_name = hash_keys[0]
        return self._key_name

    def delete(self, session_id: str) -> None:
        self.client.delete_item(TableName=self.table, Key={self.key_name: {"S": session_id}})

    def copy_as(self, session_id: str, new_id: str, changes: dict[str, Any]) -> None:
        """Writes the item of ``session_id`` again under ``new_id`` with ``changes`` (plain values), as it is stored:
        the platform's own attribute names and types, so the copy reads as a record the platform wrote."""
        answer = self.client.get_item(TableName=self.table, Key={self.key_name: {"S": session_id}}, ConsistentRead=True)
        if "Item" not in answer:
            raise KeyError(session_id)
        serializer = TypeSerializer()
        item = {**answer["Item"], self.key_name: {"S": new_id}}
        item.update(
            {k: serializer.serialize(Decimal(str(v)) if isinstance(v, float) else v) for k, v in changes.items()}
        )
        self.client.put_item(
            TableName=self.table, Item=item, ConditionExpression="attribute_not_exists(#k)",
            ExpressionAttributeNames={"#k": self.key_name},
        )  # fmt: skip

    def get(self, session_id: str) -> dict | None:
        """The record, its attribute names translated to the contract's (``recordFields`` of the contract file)."""
        answer = self.client.get_item(TableName=self.table, Key={self.key_name: {"S": session_id}}, ConsistentRead=True)
        item = answer.get("Item")
        if item is None:
            return None
        record = plain({k: self._deserializer.deserialize(v) for k, v in item.items()})
        return self.contract.record_from_deployment(record) if self.contract is not None else record


class SessionStoreKeywords(LibraryComponent):
    """Session records in DynamoDB (``SESSIONS_TABLE``)."""

    def __init__(self, ctx: LibraryContext):
        super().__init__(ctx)
        self._store: SessionStore | None = None
        self._store_key: tuple | None = None

    @property
    def store(self) -> SessionStore:
        table = str(self.endpoint("SESSIONS_TABLE"))
        aws = clients_for(self.ctx)  # the run's AWS session: moto's on the embedded platform, the chain's on AWS
        endpoint_url = str(self.ctx.endpoints.get("DYNAMODB_ENDPOINT_URL", None) or "") or None
        key = (table, aws.settings.region, endpoint_url, aws.session)
        if self._store is None or key != self._store_key:
            self._store = SessionStore(table, aws.settings.region, endpoint_url, session=aws.session)
            self._store_key = key
        self._store.contract = self.ctx.api.contract
        return self._store

    def _record(self, session_id: str) -> dict | None:
        try:
            return self.store.get(session_id)
        except (BotoCoreError, ClientError) as error:
            raise AssertionError(
                f"Reading session {session_id} from table {self.store.table} failed: {error}"
            ) from None

    @keyword(tags=["dynamodb"])
    def get_session_record(self, session: SessionRef) -> dict:
        """Returns the session's DynamoDB record (a consistent GetItem), numbers as int/float.

        Fails when the table has no record for the session.

        Example:
        | ${record} = | Get Session Record | ${session} |
        | Should Be Equal As Integers | ${record}[restartCount] | 1 |
        """
        session_id = self.session_id_of(session)
        record = self._record(session_id)
        if record is None:
            raise AssertionError(f"Table {self.store.table} has no record for session {session_id}.")
        return record

    @keyword(tags=["dynamodb", "assertion"])
    def session_record_should_have(self, session: SessionRef, match: Match = "equal", **fields: str) -> dict:
        """Fails unless the DynamoDB record has every given ``field=value``; returns the record.

        ``match`` as in `Session Should Have`: ``equal`` compares as text (``restartCount=1`` matches the number
        1), ``contain`` looks for the text in the value, case-insensitively. The failure message names each field
        with the expected and the actual value.

        Example:
        | Session Record Should Have | ${session} | status=RUNNING | restartCount=1 |
        | Session Record Should Have | ${session} | lastFailureReason=SIGKILL | match=contain |
        """
        record = self.get_session_record(session)
        assert_fields("DynamoDB record of session", self.session_id_of(session), record, fields, match)
        return record

    @keyword(name="Delete Session Record Behind The Platform's Back", tags=["dynamodb", "faults"])
    def delete_session_record_behind_the_platforms_back(self, session: SessionRef) -> None:
        """Deletes the session's item from the sessions table directly, without telling the platform.

        This is how a container becomes an orphan in the field: an operator's clean-up script, a table restore
        or a TTL sweep removes the record while the task keeps running, and only the platform's reaper can
        notice. Refused for a session this run did not create, so a real table's other sessions are never
        touched. A fault like any other: refused (the test skipped) unless the profile allows chaos
        (``${CHAOS_ALLOWED}``, the production guard).

        Example:
        | Delete Session Record Behind The Platform's Back | ${session} |
        | Run Reaper |
        | Wait Until No Orphaned Containers |
        """
        session_id = self.session_id_of(session)
        check_chaos_allowed(self.ctx, f"delete the record of session {session_id} behind the platform's back")
        if session_id not in self.ctx.tracker.all_ids():
            raise AssertionError(f"Session {session_id} was not created by this run; its record is left alone.")
        try:
            self.store.delete(session_id)
        except (BotoCoreError, ClientError) as error:
            raise AssertionError(
                f"Deleting session {session_id} from table {self.store.table} failed: {error}"
            ) from None
        self.info(f"Deleted the record of session {session_id} from {self.store.table}; the platform was not told.")

    @keyword(name="Put Session Record Nobody Starts", tags=["dynamodb", "faults", "embedded-only"])
    def put_session_record_nobody_starts(self, like: SessionRef, status: str = "STARTING") -> dict:
        """Writes a new session's record straight into the sessions table, a copy of ``like``'s in ``status`` with
        no task, and returns it (as `Get Session Record` would): a start that no API target carries out.

        This is how a session gets stuck in the field: the API target that created it dies between writing the
        record and starting its container. The platform promises to end such a session (``docs/platform-contract.md``,
        "A start nobody carries out ends"). The new session counts as this run's, so the test's teardown deletes it.
        Embedded only: the deployment contract does not say how a platform writes its records. A fault like any
        other: refused unless the profile allows chaos (``${CHAOS_ALLOWED}``).

        Example:
        | ${stuck} = | Put Session Record Nobody Starts | ${SESSION} |
        | Wait Until Session Has Status | ${stuck} | FAILED |
        """
        source = self.session_id_of(like)
        check_chaos_allowed(self.ctx, f"write a session record that nobody starts (a copy of {source}'s)")
        if source not in self.ctx.tracker.all_ids():
            raise AssertionError(f"Session {source} was not created by this run; its record is not copied.")
        new_id = f"s-{uuid.uuid4().hex[:16]}"
        now = time.time()
        changes = {"status": status, "taskId": "", "startType": "", "startDurationMs": 0, "restartCount": 0,
                   "lastFailureReason": "", "stoppedReason": "", "createdAt": now, "updatedAt": now,
                   "lastActivityAt": now, "version": 1}  # fmt: skip
        try:
            self.store.copy_as(source, new_id, changes)
        except KeyError:
            raise AssertionError(f"Table {self.store.table} has no record for session {source} to copy.") from None
        except (BotoCoreError, ClientError) as error:
            raise AssertionError(f"Writing session {new_id} into table {self.store.table} failed: {error}") from None
        self.ctx.tracker.add(self.context.scope, new_id)
        self.info(f"Wrote session {new_id} into {self.store.table} in {status} with no task; no API target starts it.")
        return self.get_session_record(new_id)
