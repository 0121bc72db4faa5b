"""Authentication and TLS towards the session API: the API client and the load engine send the profile's token,
speak https:// with certificate verification, and never log the token."""

from __future__ import annotations

import http.server
import shutil
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from PlatformLibrary.aws.session import redact
from PlatformLibrary.core.http_client import PlatformApiClient, api_auth_headers, api_tls_verify
from PlatformLibrary.core.profile import Profile
from PlatformLibrary.load.engine import HttpRequest, LoadRun
from robot.api.types import Secret

from benchmarks.bench_target import self_signed_certificate
from tests.local_http import send_json, serve

TOKEN = "tok-0123456789abcdef-PLANTED"


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[str | None] = []

    def do_GET(self) -> None:
        type(self).seen.append(self.headers.get("Authorization"))
        ok = self.headers.get("Authorization") == f"Bearer {TOKEN}"
        body = b'{"status": "ok"}' if ok else b'{"error": "unauthorized"}'
        send_json(self, 200 if ok else 401, body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def certificate(tmp_path: Path) -> Path:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: no certificate for the https server")
    return Path(self_signed_certificate(tmp_path))


@pytest.fixture
def https_api(certificate: Path) -> Iterator[str]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate, certificate.parent / "key.pem")
    yield from serve(_Handler, context)


@pytest.fixture
def http_api() -> Iterator[str]:
    yield from serve(_Handler)


def _profile(**variables) -> Profile:
    return Profile(variables={"TARGET": "aws", "PROFILE": "aws", **variables})


def test_the_token_of_a_secret_variable_goes_into_the_configured_header_and_never_into_a_log_line():
    assert api_auth_headers(_profile()) == {}
    assert api_auth_headers(_profile(API_TOKEN=Secret(TOKEN))) == {"Authorization": f"Bearer {TOKEN}"}
    api_key = _profile(API_TOKEN=Secret(TOKEN), API_AUTH_HEADER="x-api-key", API_AUTH_SCHEME="")
    assert api_auth_headers(api_key) == {"x-api-key": TOKEN}
    assert TOKEN not in redact(f"GET /health headers={{'x-api-key': '{TOKEN}'}} and again {TOKEN}")


def test_the_api_client_authenticates(http_api):
    profile = _profile(API_TOKEN=Secret(TOKEN))
    client = PlatformApiClient(http_api, headers=lambda: api_auth_headers(profile))
    assert client.request("GET", "/health").status == 200
    assert PlatformApiClient(http_api).request("GET", "/health").status == 401


def test_the_api_client_speaks_https_with_verification(https_api, certificate):
    verified = PlatformApiClient(https_api, headers=lambda: {"Authorization": f"Bearer {TOKEN}"},
                                 verify=lambda: api_tls_verify(_profile(API_CA_BUNDLE=str(certificate))))  # fmt: skip
    assert verified.request("GET", "/health").status == 200
    with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED"):
        PlatformApiClient(https_api).request("GET", "/health")  # self-signed, not trusted: refused


def _load(base_url: str, **options) -> dict[str, int]:
    run = LoadRun(
        "auth", base_url=base_url, scenario=lambda i: HttpRequest("GET", "/health"),
        model="closed", users=2, duration=0.5, iterations=20, **options,
    )  # fmt: skip
    return dict(run.run().outcomes)


def test_the_load_engine_sends_the_token_over_https(https_api, certificate):
    outcomes = _load(https_api, headers={"Authorization": f"Bearer {TOKEN}"}, ca_bundle=str(certificate))
    assert outcomes == {"ok": 20}
    assert set(_load(https_api, headers={"Authorization": f"Bearer {TOKEN}"})) == {"tls-error"}  # untrusted
    assert set(_load(https_api, ca_bundle=str(certificate))) == {"http-401"}  # no token: refused by the API


# ------------------------------------------------------------------ SigV4 (API Gateway with IAM auth)
KEY, SECRET_KEY, SESSION_TOKEN = (
    "AKIASIGV4PLANTED1234",
    "sigv4SecretKey/0123456789abcdefghijklm",
    "FwoGSIGV4TOKEN0123456789",
)


class _Recorder(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[tuple[str, str, dict, bytes]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        type(self).seen.append((self.command, self.path, dict(self.headers.items()), body))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    do_GET = do_POST = _answer

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[str]:
    _Recorder.seen = []
    yield from serve(_Recorder)


def signature_is_valid(method: str, url: str, headers: dict, body: bytes) -> bool:
    """What API Gateway does: recompute the SigV4 signature over the signed headers the request names."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    lower = {k.lower(): v for k, v in headers.items()}
    authorization = lower["authorization"]
    signed = authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
    request = AWSRequest(method=method, url=url, data=body, headers={k: lower[k] for k in signed})
    request.context["timestamp"] = lower["x-amz-date"]
    auth = SigV4Auth(Credentials(KEY, SECRET_KEY, SESSION_TOKEN), "execute-api", "us-east-1")
    expected = auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request)
    return authorization.endswith(f"Signature={expected}")


def test_sigv4_signs_api_client_and_load_engine_requests_for_api_gateway(recorder, monkeypatch, tmp_path):
    from PlatformLibrary import PlatformLibrary
    from PlatformLibrary.core.endpoints import Endpoints

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)
    library = PlatformLibrary(run_id="sigv4")
    library.profile = _profile(PLATFORM_API_URL=recorder, API_AUTH="sigv4", AWS_REGION="us-east-1")
    library.endpoints = Endpoints(library.profile)
    assert library.ctx.api.request("POST", "/sessions", json_body={"userId": "u", "clientId": "c"}).status == 200
    signer = library.ctx.api_signer()
    run = LoadRun("signed", base_url=recorder, scenario=lambda i: HttpRequest("GET", "/health"), model="closed",
                  users=1, duration=0.5, iterations=2, signer=signer)  # fmt: skip
    assert run.run().outcomes == {"ok": 2}
    assert len(_Recorder.seen) == 3
    for method, path, headers, body in _Recorder.seen:
        assert headers["Authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={KEY}/")
        assert "/us-east-1/execute-api/aws4_request" in headers["Authorization"]
        assert headers["X-Amz-Security-Token"] == SESSION_TOKEN
        assert signature_is_valid(method, recorder + path, headers, body), (method, path)
    method, path, headers, body = _Recorder.seen[0]
    assert not signature_is_valid(method, recorder + path, headers, body + b" "), "a changed body must not verify"
    assert SESSION_TOKEN not in redact(f"headers={headers}")
    assert api_auth_headers(_profile(API_AUTH="sigv4")) == {}  # no bearer token beside the signature
