"""Safety guards for chaos against a real deployment, as plain functions (the keywords wrap them).

- Chaos is refused unless the profile allows it (``${CHAOS_ALLOWED}``; the embedded platform allows it by default).
- On AWS it is refused for an environment named like production (``prod``, ``production``, ``prd`` as a word,
  in ``${ENVIRONMENT_NAME}``, the cluster or the service name) unless ``${FORCE_CHAOS_IN_PRODUCTION}`` is true,
  and refused when ``${ENVIRONMENT_NAME}`` is empty (an unnamed environment cannot be checked).
- ``${CHAOS_DRY_RUN}``: injections are described and validated but not carried out (FIS ``actionsMode=skip-all``).
- Two blast radii on AWS (``${CHAOS_SCOPE}``): ``sessions`` (default) faults only the run's own session tasks;
  ``deployment`` also lets the faults that hit the deployment itself (its API tier: a task stopped, a port
  black-holed; the API tasks' route to DynamoDB cut or slowed) run, and those only while the run holds the
  deployment exclusively and with the FIS stop alarm set.
- Everything a run creates carries the tag ``suite-run-id=<run id>``; stop and clean-up only touch what carries it.

The checks run before the first AWS call, so a refused chaos run creates nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .session import unwrap

if TYPE_CHECKING:
    from ..core.base import LibraryContext

RUN_TAG_KEY = "suite-run-id"
WORKER_TAG_KEY = "suite-worker"
CREATED_BY_TAG_KEY = "created-by"
CREATED_BY = "PlatformLibrary"

# "prod", "production" or "prd" as a word of the name: separators are anything but letters and digits, so
# "prod-eu", "sessions_prod" and "PRD" match while "preprod", "nonprod" and "product-demo" do not.
PRODUCTION_NAME = re.compile(r"(?<![a-z0-9])(?:prod|production|prd)(?![a-z0-9])", re.IGNORECASE)

SCOPES = ("sessions", "deployment")
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0", ""}


class ChaosRefused(AssertionError):
    """A safety guard refused a fault injection; nothing was created or changed."""

    ROBOT_SUPPRESS_NAME = True


class ChaosNotAllowed(ChaosRefused):
    """The profile does not allow chaos here (``CHAOS_ALLOWED``, a production-looking environment).

    Robot Framework marks the test SKIPPED with this reason: the platform did nothing wrong, the run was not
    allowed to test it. (A refusal that points at a mistake in the test, such as targeting a session another run
    created, stays a failure: that is a plain `ChaosRefused`.)
    """

    ROBOT_SKIP_EXECUTION = True


def parse_flag(value: Any, name: str) -> bool:
    """``True``/``False``, or text such as ``true``, ``no``, ``1``; anything else is an error, never a guess."""
    value = unwrap(value)
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if value is None:
        return False
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ChaosRefused(f"${{{name}}} must be true or false, got {value!r}.")


def looks_like_production(name: str) -> bool:
    """Whether ``name`` contains ``prod``, ``production`` or ``prd`` as a word (case-insensitive)."""
    return bool(name) and PRODUCTION_NAME.search(str(name)) is not None


@dataclass(frozen=True)
class ChaosGuard:
    """What the profile says about chaos, and the decision that follows from it."""

    target: str
    allowed: bool
    dry_run: bool
    environment: str
    force_production: bool
    names: tuple[tuple[str, str], ...] = ()
    scope: str = "sessions"

    @property
    def embedded(self) -> bool:
        return self.target in ("embedded", "local")

    def refusal(self) -> str | None:
        """Why chaos is refused, or ``None`` when it may go ahead."""
        if not self.allowed:
            return (
                "the profile does not allow chaos (${CHAOS_ALLOWED} is false). Set CHAOS_ALLOWED=true for an "
                "environment where faults are acceptable."
            )
        if self.embedded:
            return None
        if not self.environment:
            return "${ENVIRONMENT_NAME} is empty, so the production guard cannot check the environment. Name it."
        production = [f"{label} {value!r}" for label, value in self.names if looks_like_production(value)]
        if production and not self.force_production:
            return (
                f"it looks like production ({', '.join(production)}). Chaos in production needs "
                "--variable FORCE_CHAOS_IN_PRODUCTION:true on the command line."
            )
        return None

    def check(self, what: str) -> None:
        """Raise `ChaosRefused` naming ``what`` when the guard refuses."""
        reason = self.refusal()
        if reason:
            raise ChaosNotAllowed(f"Refused to {what}: {reason}")

    def deployment_refusal(self) -> str | None:
        """Why a fault on the deployment itself (beyond this run's sessions) is refused, or ``None``.

        The embedded platform is the suite's own: only the ordinary guard applies. On AWS the profile must opt in
        with ``${CHAOS_SCOPE}`` ``deployment``.
        """
        reason = self.refusal()
        if reason or self.embedded:
            return reason
        if self.scope != "deployment":
            return (
                "it hits the whole deployment (its API tier or its routes to DynamoDB, CloudWatch or ECS), not only "
                f"this run's sessions, and ${{CHAOS_SCOPE}} is {self.scope!r}. Set CHAOS_SCOPE=deployment where "
                "faulting the deployment's API service is acceptable (the run then takes the deployment to itself for "
                "the test)."
            )
        return None

    def check_deployment(self, what: str) -> None:
        """Raise `ChaosNotAllowed` naming ``what`` when a fault on the whole deployment is refused."""
        reason = self.deployment_refusal()
        if reason:
            raise ChaosNotAllowed(f"Refused to {what}: {reason}")

    def as_dict(self) -> dict:
        reason = self.refusal()
        return {
            "allowed": reason is None,
            "reason": reason or "",
            "dryRun": self.dry_run,
            "environment": self.environment,
            "target": self.target,
            "forcedInProduction": self.force_production,
            "scope": self.scope,
        }

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> ChaosGuard:
        """Build the guard from profile values (missing ones take the safe default)."""
        target = str(values.get("TARGET") or "embedded").lower()
        embedded = target in ("embedded", "local")
        allowed = parse_flag(values.get("CHAOS_ALLOWED", embedded), "CHAOS_ALLOWED")
        environment = str(unwrap(values.get("ENVIRONMENT_NAME")) or ("embedded" if embedded else "")).strip()
        names = [("ENVIRONMENT_NAME", environment)]
        names += [(key, str(values.get(key) or "")) for key in ("ECS_CLUSTER", "ECS_SERVICE")]
        scope = str(unwrap(values.get("CHAOS_SCOPE")) or "sessions").strip().lower()
        if scope not in SCOPES:
            raise ChaosRefused(f"${{CHAOS_SCOPE}} must be {' or '.join(SCOPES)}, got {scope!r}.")
        return cls(
            target=target,
            allowed=allowed,
            dry_run=parse_flag(values.get("CHAOS_DRY_RUN", False), "CHAOS_DRY_RUN"),
            environment=environment,
            force_production=parse_flag(values.get("FORCE_CHAOS_IN_PRODUCTION", False), "FORCE_CHAOS_IN_PRODUCTION"),
            names=tuple((label, value) for label, value in names if value),
            scope=scope,
        )

    @classmethod
    def from_context(cls, ctx: LibraryContext) -> ChaosGuard:
        profile, endpoints = ctx.profile, ctx.endpoints
        keys = (
            "TARGET",
            "CHAOS_ALLOWED",
            "CHAOS_DRY_RUN",
            "CHAOS_SCOPE",
            "ENVIRONMENT_NAME",
            "FORCE_CHAOS_IN_PRODUCTION",
        )
        values = {key: profile.get(key, None) for key in keys}
        values = {key: value for key, value in values.items() if value is not None}
        values["TARGET"] = profile.target
        if endpoints.local_platform_dir is None:  # a deployment: its cluster and service names are checked too
            for key in ("ECS_CLUSTER", "ECS_SERVICE"):
                values[key] = endpoints.get(key, "")
        return cls.from_values(values)


def check_chaos_allowed(ctx: LibraryContext, what: str) -> ChaosGuard:
    """For any chaos keyword: raise `ChaosRefused` unless the profile allows ``what``; return the guard."""
    guard = ChaosGuard.from_context(ctx)
    guard.check(what)
    return guard


# ---------------------------------------------------------------------------------------------- run tags
def run_tags(run_id: str, worker: str | None = None, **extra: str) -> dict[str, str]:
    """The tags every resource a run creates carries (values cut to AWS's 256 characters)."""
    tags = {RUN_TAG_KEY: run_id, CREATED_BY_TAG_KEY: CREATED_BY}
    if worker:
        tags[WORKER_TAG_KEY] = worker
    tags.update({k: v for k, v in extra.items() if v})
    return {str(k)[:128]: str(v)[:256] for k, v in tags.items()}


def tags_as_dict(tags: Any) -> dict[str, str]:
    """Tags in any AWS shape (``{"k": "v"}``, ``[{"key", "value"}]``, ``[{"Key", "Value"}]``) as a dict."""
    if not tags:
        return {}
    if isinstance(tags, Mapping):
        return {str(k): str(v) for k, v in tags.items()}
    result = {}
    for item in tags if isinstance(tags, Iterable) else ():
        if isinstance(item, Mapping):
            key = item.get("key", item.get("Key"))
            if key is not None:
                result[str(key)] = str(item.get("value", item.get("Value", "")))
    return result


def is_tagged_with_run(tags: Any, run_id: str) -> bool:
    """Whether a resource carries ``suite-run-id=<run_id>`` (the only resources a run may stop or delete)."""
    return bool(run_id) and tags_as_dict(tags).get(RUN_TAG_KEY) == run_id
