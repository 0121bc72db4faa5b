"""A deployment whose session API names things differently: described in a contract file, no code changes.

A small in-process API speaks another dialect (``/v2/workspaces``, ``id``, ``ACTIVE``); with ``API_CONTRACT_FILE``
the library's keywords and the load engine talk to it unchanged."""

from __future__ import annotations

import http.server
import json
from collections.abc import Iterator

import pytest
from PlatformLibrary import PlatformLibrary
from PlatformLibrary.core.contract import ApiContract, ContractError
from PlatformLibrary.core.endpoints import Endpoints
from PlatformLibrary.core.profile import Profile
from PlatformLibrary.load.engine import HttpRequest, LoadRun
from PlatformLibrary.load.keywords import _in_contract

from tests.local_http import serve

CONTRACT = {
    "paths": {"/sessions": "/v2/workspaces", "/health": "/healthz"},
    "fields": {"sessionId": "id", "userId": "user", "clientId": "tenant"},
    "statuses": {"RUNNING": "ACTIVE", "STOPPED": "TERMINATED"},
}


class Dialect(http.server.BaseHTTPRequestHandler):
    """Another team's API: what the suite calls /sessions is /v2/workspaces, sessionId is id, RUNNING is ACTIVE."""

    protocol_version = "HTTP/1.1"
    store: dict[str, dict] = {}

    def _send(self, status: int, body: object = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/healthz":
            return self._send(200, {"status": "ok"})
        if self.path.startswith("/v2/workspaces?user="):
            user = self.path.split("=", 1)[1]
            return self._send(200, {"sessions": [s for s in self.store.values() if s["user"] == user]})
        key = self.path.removeprefix("/v2/workspaces/")
        return self._send(200, self.store[key]) if key in self.store else self._send(404, {"error": "not_found"})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path != "/v2/workspaces" or set(body) != {"user", "tenant"}:
            return self._send(400, {"error": "invalid_request", "message": f"{self.path} {sorted(body)}"})
        session = {"id": f"w-{len(self.store) + 1}", "user": body["user"], "tenant": body["tenant"], "status": "ACTIVE"}
        self.store[session["id"]] = session
        return self._send(201, session)

    def do_DELETE(self) -> None:
        self.store.pop(self.path.removeprefix("/v2/workspaces/"), None)
        self._send(204)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def dialect() -> Iterator[str]:
    Dialect.store = {}
    yield from serve(Dialect)


def library_for(url: str, contract_file: str) -> PlatformLibrary:
    library = PlatformLibrary(run_id="contract")
    library.profile = Profile(
        variables={"TARGET": "aws", "PROFILE": "aws", "PLATFORM_API_URL": url, "API_CONTRACT_FILE": contract_file}
    )
    library.endpoints = Endpoints(library.profile)
    return library


def test_keywords_speak_a_deployment_of_another_dialect_through_the_contract_file(dialect, tmp_path):
    contract_file = tmp_path / "contract.json"
    contract_file.write_text(json.dumps(CONTRACT))
    library = library_for(dialect, str(contract_file))
    session = library.keywords["create_session"]("alice", "acme")
    assert session == {"sessionId": "w-1", "userId": "alice", "clientId": "acme", "status": "RUNNING"}
    assert library.keywords["get_session"]("w-1")["status"] == "RUNNING"
    assert [s["sessionId"] for s in library.keywords["list_sessions_of_user"]("alice")] == ["w-1"]
    assert library.keywords["delete_sessions_created_by_this_test"]() == ["w-1"]
    assert Dialect.store == {}


def test_without_the_contract_the_same_deployment_is_not_understood(dialect):
    with pytest.raises(AssertionError, match="POST /sessions -> 400 invalid_request"):
        library_for(dialect, "").keywords["create_session"]("alice", "acme")


def test_the_load_engine_speaks_the_dialect_too(dialect):
    contract = ApiContract.load(None)
    assert contract.is_default
    contract = ApiContract(**{k: tuple(sorted(v.items(), key=lambda i: -len(i[0]))) for k, v in CONTRACT.items()})
    created = []

    def create(i: int) -> HttpRequest:
        body = json.dumps({"userId": f"u{i}", "clientId": "acme"}).encode()
        return HttpRequest("POST", "/sessions", body, {"Content-Type": "application/json"})

    def on_answer(i, request, answer):
        created.append(json.loads(answer.body)["sessionId"])
        return None

    request_for, answered = _in_contract(contract, create, on_answer)
    result = LoadRun("dialect", base_url=dialect, scenario=request_for, on_answer=answered, model="closed",
                     users=1, duration=1.0, iterations=3).run()  # fmt: skip
    assert result.outcomes == {"ok": 3} and sorted(created) == ["w-1", "w-2", "w-3"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "is not valid JSON"),
        ('{"routes": {}}', "expected an object with"),
        ('{"paths": {"sessions": "/v2"}}', "must start with '/'"),
        ('{"fields": {"sessionId": 7}}', "must map non-empty texts to texts"),
    ],
)
def test_a_bad_contract_file_gets_a_clear_error(tmp_path, content, message):
    bad = tmp_path / "contract.json"
    bad.write_text(content)
    with pytest.raises(ContractError, match=message):
        ApiContract.load(bad)
    with pytest.raises(ContractError, match="cannot be read"):
        ApiContract.load(tmp_path / "missing.json")


def test_the_record_reader_translates_the_deployments_attribute_names(tmp_path):
    """A table whose items say ``restarts`` and ``ACTIVE`` reads as ``restartCount`` and ``RUNNING``."""
    import boto3
    from moto import mock_aws
    from PlatformLibrary.sessions.store import SessionStore

    contract_file = tmp_path / "contract.json"
    contract_file.write_text(json.dumps({**CONTRACT, "recordFields": {"restartCount": "restarts"}}))
    contract = ApiContract.load(contract_file)
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        client.put_item(TableName="t", Item={"id": {"S": "s-1"}, "restarts": {"N": "1"}, "status": {"S": "ACTIVE"}})
        store = SessionStore("t", "us-east-1")
        assert store.get("s-1") == {"id": "s-1", "restarts": 1, "status": "ACTIVE"}  # no contract: as stored
        store.contract = contract
        assert store.get("s-1") == {"id": "s-1", "restartCount": 1, "status": "RUNNING"}
