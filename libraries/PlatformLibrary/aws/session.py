"""boto3 plumbing for the AWS keywords: one ``boto3.Session`` per settings, clients with standard retries.

Credentials come only from boto3's default chain (environment, shared config/SSO profile, container or instance
role). Nothing here reads, stores or logs a key: the profile names at most a shared-config profile
(``AWS_PROFILE``). Anything logged about a request goes through `redact` first.

On the embedded target the same code reaches the moto server of the embedded platform (its endpoints come
from ``endpoints.json``) with moto's dummy credentials; AWS-only keywords refuse that target before any call.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ProfileNotFound
from robot.api.types import Secret

from ..core.base import LibraryComponent, LibraryContext
from ..core.secrets import known_secrets, remember_secret

# moto accepts any credentials; these are only ever used against the embedded platform's moto server.
_EMBEDDED_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}

_SECRET_KEY = re.compile(r"secret|token|password|passwd|credential|authorization|signature|access.?key", re.I)
_ACCESS_KEY_ID = re.compile(r"\b(?:AKIA|ASIA|AIDA|AROA)[A-Z0-9]{16}\b")
_URL_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")
REDACTED = "<redacted>"
# Values after these names, in any text (botocore's debug lines, header dumps, query strings), are secrets.
_SECRET_FIELD = re.compile(
    r"(?i)((?:x-amz-security-token|x-amz-signature|authorization|aws_session_token|aws_secret_access_key|"
    r"sessiontoken|secretaccesskey|signature|password|api[-_]?key|bearer)['\"]?\s*[:=]?\s*b?['\"]?\s*)"
    r"([^'\"\s,;}&]{6,})"
)
# Loggers whose records are redacted before any handler (Robot Framework's included) sees them.
_REDACTED_LOGGERS = ("botocore", "boto3", "urllib3", "s3transfer", "requests", "PlatformLibrary")


def _redact_text(text: str) -> str:
    for secret in known_secrets():
        if secret in text:
            text = text.replace(secret, REDACTED)
    text = _SECRET_FIELD.sub(lambda m: m[1] + REDACTED, text)
    return _URL_USERINFO.sub(f"{REDACTED}@", _ACCESS_KEY_ID.sub(REDACTED, text))


def _install_log_redaction() -> None:
    """Redact every log record of botocore, boto3, urllib3 (and this library) when it is made.

    A record factory runs before any logger's or handler's filters, so it covers Robot Framework's handler, pabot's
    and pytest's alike, at every level: botocore's DEBUG lines print signed headers and session tokens.
    """
    previous = logging.getLogRecordFactory()
    if getattr(previous, "platform_library_redaction", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if record.name.startswith(_REDACTED_LOGGERS):
            try:
                message = record.getMessage()
            except Exception:  # a malformed record is logging's business, not ours
                return record
            redacted = _redact_text(message)
            if redacted != message:
                record.msg, record.args = redacted, None
        return record

    factory.platform_library_redaction = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


class AwsError(AssertionError):
    """An AWS call failed or the AWS settings are incomplete; the message says which and why."""

    ROBOT_SUPPRESS_NAME = True


def unwrap(value: Any) -> Any:
    """The plain value of a Robot Framework ``Secret`` (for the one place that hands it to boto3)."""
    return value.value if isinstance(value, Secret) else value


def redact(value: Any) -> Any:
    """A copy of ``value`` that is safe to log.

    Values under secret-looking keys (``SecretAccessKey``, ``sessionToken``, ``password`` ...) and ``Secret``
    objects become ``<redacted>``; access key ids and ``user:password@`` in URLs are masked inside any text.
    """
    if isinstance(value, Secret):
        return REDACTED
    if isinstance(value, Mapping):
        return {k: (REDACTED if _SECRET_KEY.search(str(k)) else redact(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return _redact_text(value)
    return value


def describe_error(error: Exception) -> str:
    """One line for a botocore error: the AWS error code and message, never request headers."""
    if isinstance(error, ClientError):
        info = error.response.get("Error", {})
        return f"{info.get('Code', 'Error')}: {redact(info.get('Message', str(error)))}"
    return redact(f"{type(error).__name__}: {error}")


@dataclass(frozen=True)
class AwsSettings:
    """Where the AWS calls go. Equal settings share one session and its clients."""

    region: str
    profile_name: str | None = None
    embedded: bool = False
    endpoint_urls: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    max_attempts: int = 5
    connect_timeout: float = 5.0
    read_timeout: float = 30.0

    def endpoint_for(self, service: str) -> str | None:
        return dict(self.endpoint_urls).get(service)

    @classmethod
    def from_context(cls, ctx: LibraryContext) -> AwsSettings:
        profile, local = ctx.profile, ctx.endpoints.local_aws()
        if local is not None:  # a platform on this machine: its moto stand-ins, dummy credentials
            region = local.pop("region")
            return cls(region=region, embedded=True, endpoint_urls=tuple(sorted(local.items())), max_attempts=2)
        region = str(unwrap(profile.get("AWS_REGION", "")) or "")
        if not region:
            raise AwsError(
                "Profile variable ${AWS_REGION} is empty; set it (or env AWS_REGION) to the platform's region."
            )
        profile_name = str(unwrap(profile.get("AWS_PROFILE", "")) or "") or None
        urls = profile.get("AWS_ENDPOINT_URLS", None) or {}
        if not isinstance(urls, Mapping):
            raise AwsError(f"${{AWS_ENDPOINT_URLS}} must map service names to URLs, got {type(urls).__name__}.")
        # An emulated deployment (profile aws-emulated) answers on loopback and takes moto's dummy credentials.
        emulated = bool(profile.get("AWS_EMULATED", False))
        return cls(
            region=region,
            profile_name=None if emulated else profile_name,
            embedded=emulated,
            endpoint_urls=tuple(sorted((str(k), str(v)) for k, v in urls.items() if v)),
        )


class AwsClients:
    """One ``boto3.Session`` and its clients (botocore standard retry mode, bounded timeouts)."""

    def __init__(self, settings: AwsSettings):
        self.settings = settings
        self._session: boto3.Session | None = None
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    @property
    def session(self) -> boto3.Session:
        with self._lock:
            return self._session_locked()

    def _session_locked(self) -> boto3.Session:
        if self._session is None:
            kwargs: dict[str, Any] = {"region_name": self.settings.region}
            if self.settings.embedded:
                kwargs.update(_EMBEDDED_CREDENTIALS)
            elif self.settings.profile_name:
                kwargs["profile_name"] = self.settings.profile_name
            try:
                self._session = boto3.Session(**kwargs)
                credentials = self._session.get_credentials()
                if credentials is not None:  # whatever the chain found: masked in every log line from now on
                    frozen = credentials.get_frozen_credentials()
                    for value in (frozen.access_key, frozen.secret_key, frozen.token):
                        remember_secret(value)
            except ProfileNotFound:
                raise AwsError(
                    f"AWS profile {self.settings.profile_name!r} (${{AWS_PROFILE}}) is not in the shared config; "
                    "configure it (aws configure sso / ~/.aws/config) or leave AWS_PROFILE empty."
                ) from None
        return self._session

    def client(self, service: str) -> Any:
        """The client of ``service`` (``ecs``, ``fis``, ``cloudwatch`` ...), created once."""
        with self._lock:
            if service not in self._clients:
                config = Config(
                    retries={"mode": "standard", "max_attempts": self.settings.max_attempts},
                    connect_timeout=self.settings.connect_timeout,
                    read_timeout=self.settings.read_timeout,
                    user_agent_extra="PlatformLibrary",
                )
                kwargs: dict[str, Any] = {"config": config}
                endpoint = self.settings.endpoint_for(service)
                if endpoint:
                    kwargs["endpoint_url"] = endpoint
                self._clients[service] = self._session_locked().client(service, **kwargs)
            return self._clients[service]


def clients_for(ctx: LibraryContext) -> AwsClients:
    """The run's AWS clients for the current profile (new ones when the profile's settings changed)."""
    settings = AwsSettings.from_context(ctx)
    cached: AwsClients | None = ctx.aws_clients
    if cached is None or cached.settings != settings:
        cached = AwsClients(settings)
        ctx.aws_clients = cached
    return cached


def call(client: Any, operation: str, what: str, **params: Any) -> dict:
    """``client.<operation>(**params)`` with a failure message that says what was attempted, redacted."""
    try:
        return getattr(client, operation)(**params)
    except (BotoCoreError, ClientError) as error:
        raise AwsError(
            f"{what} failed ({client.meta.service_model.service_name} {operation}): {describe_error(error)}"
        ) from None


def paginate(client: Any, operation: str, key: str, what: str, **params: Any) -> list:
    """Every item under ``key`` across the pages of ``operation``."""
    items: list = []
    try:
        for page in client.get_paginator(operation).paginate(**params):
            items.extend(page.get(key, []))
    except (BotoCoreError, ClientError) as error:
        raise AwsError(
            f"{what} failed ({client.meta.service_model.service_name} {operation}): {describe_error(error)}"
        ) from None
    return items


class AwsComponent(LibraryComponent):
    """A component that calls AWS: the run's clients, required profile names, deadlines and the poll interval."""

    def _client(self, service: str) -> Any:
        return clients_for(self.ctx).client(service)

    def _name(self, key: str) -> str:
        value = str(self.ctx.endpoints.get(key, "") or "")
        if not value:
            raise AwsError(f"Profile variable ${{{key}}} is empty; set it in resources/profiles/aws.py or its env.")
        return value

    def _timeout(self, given: timedelta | None, name: str, default: str) -> float:
        return given.total_seconds() if given is not None else self.profile.seconds(name, default)

    def _poll(self) -> float:
        return self.profile.seconds("POLL_INTERVAL")


def sigv4_signer(ctx: LibraryContext) -> Any:
    """A signer for the session API when ``${API_AUTH}`` is ``sigv4`` (API Gateway with IAM auth), else ``None``.

    Signs each request for the service ``${API_SIGV4_SERVICE}`` (default ``execute-api``) in ``${AWS_REGION}`` with
    the credentials of the run's boto3 session (botocore's SigV4Auth): the same credential chain as every AWS call,
    and the same redaction (the session token is a remembered secret).
    """
    if str(ctx.profile.get("API_AUTH", "") or "").strip().lower() != "sigv4":
        return None
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    clients = clients_for(ctx)
    credentials = clients.session.get_credentials()
    if credentials is None:
        raise AwsError("API_AUTH is sigv4, but boto3's credential chain found no credentials to sign with.")
    service = str(ctx.profile.get("API_SIGV4_SERVICE", "") or "execute-api")
    region = clients.settings.region

    def sign(method: str, url: str, headers: dict[str, str], body: bytes) -> dict[str, str]:
        request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
        SigV4Auth(credentials.get_frozen_credentials(), service, region).add_auth(request)
        wanted = ("authorization", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256")
        return {k: v for k, v in request.headers.items() if k.lower() in wanted}

    return sign


# The environment's credentials are masked from the moment the library is imported.
for _name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
    remember_secret(os.environ.get(_name))
_install_log_redaction()
