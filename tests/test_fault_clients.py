"""The chaos probes (faults/clients.py): they speak through the session-API client (token, contract) and count as
"got through" only the answer the step expects; a 401, 403 or 404 is not a recovery."""

from __future__ import annotations

import http.server
import time
from collections.abc import Iterator

import pytest
from PlatformLibrary.core.http_client import PlatformApiClient
from PlatformLibrary.faults.clients import ExpectedStatus, RetryingClient, timed_request

from tests.local_http import send_json, serve

TOKEN = "probe-token-0123"


class _Handler(http.server.BaseHTTPRequestHandler):
    """200 to a request with the token, 401 to one without; ``/missing`` answers 404, ``/down`` 503."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            status, body = 401, b'{"error": "unauthorized", "message": "no token"}'
        elif self.path == "/missing":
            status, body = 404, b'{"error": "session_not_found", "message": "no such session"}'
        elif self.path == "/down":
            status, body = 503, b'{"error": "store_unavailable", "message": "DynamoDB unreachable"}'
        else:
            status, body = 200, b'{"status": "ok"}'
        send_json(self, status, body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def api_url() -> Iterator[str]:
    yield from serve(_Handler)


def _client(url: str, token: str | None = TOKEN) -> PlatformApiClient:
    return PlatformApiClient(url, timeout=2.0, headers=lambda: {"Authorization": f"Bearer {token}"} if token else {})


def _retry(api: PlatformApiClient, path: str, expected: str = "2xx", deadline: float = 0.6) -> RetryingClient:
    client = RetryingClient("probe", api, "GET", path, 1.0, 0.05, 0.1, deadline, ExpectedStatus.parse(expected))
    client.start()
    end = time.monotonic() + deadline + 2
    while client.running and time.monotonic() < end:
        time.sleep(0.02)
    client.stop()
    return client


def test_a_timed_request_goes_through_the_api_client_with_its_token(api_url):
    attempt = timed_request(_client(api_url), "GET", "/health", 2.0)
    assert attempt.status == 200 and attempt.outcome == "answer"
    refused = timed_request(_client(api_url, token=None), "GET", "/health", 2.0)
    assert refused.status == 401
    assert refused.describe().startswith('401 \'{"error": "unauthorized"')


def test_a_timed_request_never_raises_for_no_answer():
    attempt = timed_request(_client("http://127.0.0.1:9"), "GET", "/health", 0.5)
    assert attempt.status is None and attempt.outcome == "ConnectionError"


def test_a_401_is_not_a_recovery(api_url):
    client = _retry(_client(api_url, token=None), "/health")
    attempts, success = client.snapshot()
    assert success is None
    assert len(attempts) >= 2 and {a.status for a in attempts} == {401}
    assert 'no 2xx answer yet, last: 401 \'{"error": "unauthorized"' in client.summary()


@pytest.mark.parametrize("path", ["/missing", "/down"])
def test_a_404_or_503_is_not_a_recovery_either(api_url, path):
    assert _retry(_client(api_url), path).snapshot()[1] is None


def test_the_client_gets_through_on_the_expected_answer(api_url):
    client = _retry(_client(api_url), "/health")
    attempts, success = client.snapshot()
    assert success is not None and success.status == 200 and len(attempts) == 1
    assert "got 200 on attempt 1" in client.summary()


def test_a_step_that_expects_a_404_names_it(api_url):
    success = _retry(_client(api_url), "/missing", expected="404").snapshot()[1]
    assert success is not None and success.status == 404


@pytest.mark.parametrize(
    ("text", "yes", "no"),
    [
        ("2xx", [200, 201, 204], [301, 401, 403, 404, 500, None]),
        ("200 404", [200, 404], [201, 401, 503]),
        ("200, 2xx, 409", [200, 204, 409], [404]),
    ],
)
def test_expected_statuses(text, yes, no):
    expected = ExpectedStatus.parse(text)
    assert all(expected.matches(s) for s in yes)
    assert not any(expected.matches(s) for s in no)


@pytest.mark.parametrize("text", ["", "ok", "2xxx", "700", "non-5xx"])
def test_expected_statuses_refuse_what_they_cannot_read(text):
    with pytest.raises(ValueError, match=r"Expected HTTP statuses|at least one expected status"):
        ExpectedStatus.parse(text)


def test_the_keyword_uses_the_library_api_client_and_fails_naming_what_it_got(api_url, tmp_path):
    """`Start Retrying API Client` through the library: no token in the profile, so every answer is 401, and
    the wait fails saying so (status and body excerpt), instead of counting the 401 as the platform back."""
    from datetime import timedelta

    from PlatformLibrary import PlatformLibrary
    from PlatformLibrary.core.endpoints import Endpoints
    from PlatformLibrary.core.profile import Profile

    library = PlatformLibrary(run_id="unit")
    library.profile = Profile(
        variables={
            "TARGET": "aws",
            "PLATFORM_API_URL": api_url,
            "CHAOS_CLIENT_TIMEOUT": "1 s",
            "RECOVERY_TIMEOUT": "1 s",
            "FAULT_REACTION_TIMEOUT": "0 s",
            "POLL_INTERVAL": "0.05 s",
            "HTTP_TIMEOUT": "2 s",
            "FAULT_LEDGER": str(tmp_path / "ledger.json"),
        }
    )
    library.endpoints = Endpoints(library.profile)
    library.keywords["start_retrying_api_client"]("reader", "/health", backoff=timedelta(seconds=0.05))
    try:
        with pytest.raises(AssertionError, match=r"never got the answer it expects \(2xx\)") as failure:
            library.keywords["wait_until_retrying_api_client_gets_through"]("reader", timeout=timedelta(seconds=0.5))
    finally:
        library.keywords["start_retrying_api_client"].__self__.end_test(None, None)
    assert 'last: 401 \'{"error": "unauthorized"' in str(failure.value)
