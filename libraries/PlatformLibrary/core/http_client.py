"""A small HTTP client for the platform API: keep-alive, JSON errors made readable, timings recorded."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter

from .contract import ApiContract
from .secrets import remember_secret, secret_value

# sign(method, url, headers, body) -> the headers that authenticate this one request (SigV4: aws/session.py).
Signer = Callable[[str, str, dict[str, str], bytes], dict[str, str]]


@dataclass
class ApiResponse:
    """One answer of the platform, with what a failure message needs."""

    method: str
    path: str
    status: int
    headers: dict[str, str]
    content: bytes
    seconds: float
    body: Any = field(default=None)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    @property
    def error_code(self) -> str | None:
        return self.body.get("error") if isinstance(self.body, dict) else None

    @property
    def retry_after(self) -> str | None:
        return self.headers.get("Retry-After")

    def describe(self) -> str:
        """``POST /sessions -> 503 store_unavailable: DynamoDB unreachable (Retry-After: 2)``."""
        detail = ""
        if isinstance(self.body, dict) and ("error" in self.body or "message" in self.body):
            detail = f" {self.body.get('error', '')}: {self.body.get('message', '')}".rstrip(": ")
        elif self.content:
            detail = f" {self.text[:300]!r}"
        retry = f" (Retry-After: {self.retry_after})" if self.retry_after else ""
        return f"{self.method} {self.path} -> {self.status}{detail}{retry}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "body": self.body if self.body is not None else self.text,
            "error": self.error_code,
            "retryAfter": self.retry_after,
            "headers": dict(self.headers),
            "seconds": self.seconds,
        }


class _NamedHostAdapter(HTTPAdapter):
    """HTTPS to an address that is not the host the URL names (a hop in front of it): the TLS handshake still names
    that host (SNI) and its certificate is checked against it."""

    def __init__(self, hostname: str):
        self._hostname = hostname
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["server_hostname"] = self._hostname
        kwargs["assert_hostname"] = self._hostname
        super().init_poolmanager(*args, **kwargs)


class PlatformApiClient:
    """HTTP client of the session API; the base URL is looked up per request (the platform may move).

    ``via`` (``host:port``, see `through`) sends the connections elsewhere than the base URL's host: a hop in front of
    the API, where a fault on this client's traffic alone can be put."""

    def __init__(
        self,
        base_url: Callable[[], str] | str,
        timeout: Callable[[], float] | float = 5.0,
        headers: Callable[[], dict[str, str]] | None = None,
        verify: Callable[[], bool | str] | None = None,
        contract: Callable[[], ApiContract] | None = None,
        signer: Callable[[], Signer | None] | None = None,
        via: str | None = None,
    ):
        self._base_url = base_url if callable(base_url) else (lambda: base_url)
        self._timeout = timeout if callable(timeout) else (lambda: timeout)
        self._headers = headers or dict
        self._verify = verify or (lambda: True)
        self._contract = contract or ApiContract
        self._signer = signer or (lambda: None)
        self.via = via
        self._local = threading.local()

    def through(self, address: str) -> PlatformApiClient:
        """This client, its connections sent to ``address`` (``host:port``: a hop in front of the API) instead of the
        base URL's host. Everything else stays: the authentication header or SigV4, TLS, the contract mapping, and the
        requests still name the base URL's host (``Host``, TLS SNI and the certificate check, SigV4's signed URL), so
        the API cannot tell them from this client's own."""
        return PlatformApiClient(
            self._base_url, self._timeout, self._headers, self._verify, self._contract, self._signer, via=address
        )

    @property
    def timeout(self) -> float:
        return float(self._timeout())

    @property
    def http(self) -> requests.Session:
        """One keep-alive ``requests.Session`` per thread (Session objects are not thread-safe)."""
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers["Accept"] = "application/json"
            self._local.session = session
        return session

    @property
    def contract(self) -> ApiContract:
        return self._contract()

    @property
    def base_url(self) -> str:
        return str(self._base_url()).rstrip("/")

    def request(
        self,
        method: str,
        path: str,
        json_body: Any = None,
        data: bytes | None = None,
        timeout: float | None = None,
        extra_headers: dict[str, str] | None = None,
    ) -> ApiResponse:
        """One call; ``extra_headers`` (e.g. a Content-Type a test sends on purpose) go out with this request only."""
        contract = self.contract
        if not contract.is_default:  # the deployment names things differently (core/contract.py)
            path = contract.path(path)
            json_body = contract.to_deployment(json_body)
        url = self.base_url + path
        headers = {**self._headers(), **(extra_headers or {})}
        sign = self._signer()
        if sign is not None:  # SigV4 (API Gateway with IAM auth): sign the exact bytes that are sent
            if json_body is not None:
                data, json_body = json.dumps(json_body).encode(), None
                headers["Content-Type"] = "application/json"
            headers.update(sign(method, url, headers, data or b""))
        sent = url
        if self.via:  # the connection goes to the hop; the request still names the API's host
            parts = urlsplit(url)
            host = parts.netloc.rsplit("@", 1)[-1]
            headers["Host"] = host
            sent = urlunsplit((parts.scheme, self.via, parts.path, parts.query, parts.fragment))
            if parts.scheme == "https":
                self._name_host(parts.hostname or host)
        started = time.perf_counter()
        response = self.http.request(
            method,
            sent,
            json=json_body,
            data=data,
            headers=headers or None,  # authentication: read per request, never logged
            verify=self._verify(),
            timeout=self.timeout if timeout is None else timeout,
        )
        seconds = time.perf_counter() - started
        content = response.content
        body = None
        if "json" in response.headers.get("Content-Type", "") and content:
            try:
                body = json.loads(content)
            except ValueError:
                body = None
            if not contract.is_default:
                body = contract.from_deployment(body)
        return ApiResponse(method, path, response.status_code, dict(response.headers), content, seconds, body)

    def _name_host(self, hostname: str) -> None:
        """HTTPS through the hop: the handshake names ``hostname`` and checks its certificate (per thread)."""
        named = getattr(self._local, "named", None)
        if named != hostname:
            self.http.mount(f"https://{self.via}/", _NamedHostAdapter(hostname))
            self._local.named = hostname

    def close(self) -> None:
        session = getattr(self._local, "session", None)
        if session is not None:
            session.close()
            self._local.session = None
            self._local.named = None

    # Paths of the API (docs/openapi.yaml).
    @staticmethod
    def session_path(session_id: str) -> str:
        return f"/sessions/{quote(session_id, safe='')}"

    @classmethod
    def file_path(cls, session_id: str, path: str) -> str:
        """The URL path of a workspace file, with ``.`` and ``..`` segments percent-encoded.

        urllib3 removes dot segments while it parses a URL (RFC 3986), so ``../x`` would silently become another
        URL; encoded, they pass that step, and the request carries the path as written: the platform must refuse
        an escape itself.
        """
        segments = [
            quote(part, safe="") if part not in (".", "..") else part.replace(".", "%2E") for part in path.split("/")
        ]
        return f"{cls.session_path(session_id)}/files/{'/'.join(segments)}"


def api_auth_headers(profile: Any) -> dict[str, str]:
    """The header that authenticates the suite to the session API, from the profile; ``{}`` without a token.

    ``${API_TOKEN}`` (a Robot ``Secret`` variable, or text) goes into ``${API_AUTH_HEADER}`` (default
    ``Authorization``) after ``${API_AUTH_SCHEME}`` (default ``Bearer``; empty for an API key header such as
    ``x-api-key``). The token is registered as a secret, so no log line shows it.
    """
    token = secret_value(profile.get("API_TOKEN", "") or "")
    if not token:
        return {}
    remember_secret(token)
    header = str(profile.get("API_AUTH_HEADER", "") or "Authorization")
    scheme = str(profile.get("API_AUTH_SCHEME", "Bearer") or "")
    return {header: f"{scheme} {token}" if scheme else token}


def api_tls_verify(profile: Any) -> bool | str:
    """What requests' ``verify`` gets: ``${API_CA_BUNDLE}`` (a file), else ``${API_VERIFY_TLS}`` (default true)."""
    bundle = str(profile.get("API_CA_BUNDLE", "") or "")
    if bundle:
        return bundle
    return str(profile.get("API_VERIFY_TLS", True)).strip().lower() not in ("false", "no", "off", "0")


_contracts: dict[str, ApiContract] = {}


def api_contract(profile: Any, project_root: Any = None) -> ApiContract:
    """The deployment's API contract from ``${API_CONTRACT_FILE}`` (relative to the project), read once per file."""
    name = str(profile.get("API_CONTRACT_FILE", "") or "")
    if name not in _contracts:
        path = name
        if name and project_root is not None and not Path(name).is_absolute():
            path = str(Path(project_root) / name)
        _contracts[name] = ApiContract.load(path)
    return _contracts[name]
