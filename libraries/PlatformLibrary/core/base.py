"""What every component is built on: the narrow shared context, and the component base class.

Components never see the library class. The facade (``library.py``) builds one :class:`LibraryContext` and hands
it, together with the sibling components each one uses, to every component's constructor (see
``docs/architecture.md``). This module imports nothing of the library but the profile, the endpoints, the run
context and the session tracker, so it can sit at the bottom of the import graph.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from robot.api import logger

from .context import RunContext
from .endpoints import Endpoints
from .http_client import PlatformApiClient, api_auth_headers, api_contract, api_tls_verify
from .profile import Profile
from .tracking import SessionTracker

PROJECT_ROOT = Path(__file__).resolve().parents[3]


class TargetError(AssertionError):
    """A keyword was asked for on a target that cannot do it."""

    ROBOT_SUPPRESS_NAME = True


def keyword_title(name: str) -> str:
    """``create_fis_experiment_template`` -> ``Create FIS Experiment Template`` (acronyms as the docs write them).

    A name that already has spaces (an explicit ``@keyword(name=...)`` or a title) is returned as it is."""
    if " " in name:
        return name
    acronyms = {
        "aws": "AWS", "fis": "FIS", "ecs": "ECS", "efs": "EFS", "alb": "ALB", "api": "API", "ttl": "TTL", "cpu": "CPU",
        "dynamodb": "DynamoDB",
    }  # fmt: skip
    return " ".join(acronyms.get(word, word.capitalize()) for word in name.split("_"))


def check_target(profile: Profile, keyword: str, tags: list[str] | tuple[str, ...]) -> None:
    """Target gating in one place: a keyword tagged ``aws-only`` or ``embedded-only`` refuses the other target."""
    if "aws-only" in tags and profile.is_embedded:
        raise TargetError(
            f"'{keyword}' works on the AWS target only; profile '{profile.text('PROFILE')}' targets the embedded "
            "platform. Run with --variablefile resources/profiles/aws.py."
        )
    if "embedded-only" in tags and not profile.is_embedded:
        raise TargetError(
            f"'{keyword}' works on the embedded platform only (it acts on local processes, cgroups and files); "
            f"profile '{profile.text('PROFILE')}' targets {profile.target}."
        )


class LibraryContext:
    """The state all components share: profile, endpoints, run ids, the sessions this run created, the API client.

    Also the one cache of per-run clients (``aws_clients``, see ``aws/session.clients_for``).
    """

    def __init__(self, profile: Profile, run: RunContext, project_root: Path = PROJECT_ROOT):
        self.profile = profile
        self.run = run
        self.endpoints = Endpoints(profile)
        self.tracker = SessionTracker()
        self.project_root = project_root
        self.aws_clients: Any = None
        # Signs API requests (SigV4 for API Gateway with IAM auth); the facade wires it from the AWS session.
        self.api_signer: Callable[[], Any] = lambda: None
        self._api: PlatformApiClient | None = None

    @property
    def api(self) -> PlatformApiClient:
        """The HTTP client of the session API (the endpoint is read at each call, so a restarted platform works)."""
        if self._api is None:
            self._api = PlatformApiClient(
                lambda: self.endpoints.get("PLATFORM_API_URL"),
                timeout=lambda: self.profile.seconds("HTTP_TIMEOUT"),
                headers=lambda: api_auth_headers(self.profile),
                verify=lambda: api_tls_verify(self.profile),
                contract=lambda: api_contract(self.profile, self.project_root),
                signer=lambda: self.api_signer(),
            )
        return self._api


class LibraryComponent:
    """Base of every keyword component: the shared context, logging and session ids."""

    def __init__(self, ctx: LibraryContext):
        self.ctx = ctx

    @property
    def profile(self) -> Profile:
        return self.ctx.profile

    @property
    def context(self) -> RunContext:
        return self.ctx.run

    @property
    def http_timeout(self) -> float:
        return self.profile.seconds("HTTP_TIMEOUT")

    def endpoint(self, key: str) -> str:
        return self.ctx.endpoints.get(key)

    def info(self, message: str, html: bool = False) -> None:
        logger.info(message, html=html)

    def debug(self, message: str) -> None:
        logger.debug(message)

    @staticmethod
    def session_id_of(session: Any) -> str:
        """Accept a session id or a session object (dict with ``sessionId``) and return the id."""
        if isinstance(session, dict):
            session_id = session.get("sessionId")
            if not session_id:
                raise ValueError(f"Session object has no 'sessionId': {session!r}")
            return str(session_id)
        if not isinstance(session, str) or not session.strip():
            raise ValueError(f"Expected a session id or a session object, got {session!r}.")
        return session.strip()
