"""Profile access: every timeout, SLA number and target setting comes from the active profile.

The profile is a Robot Framework variable file (``resources/profiles/local.py`` or ``aws.py``). Keywords read it
through ``BuiltIn`` when they run, so a variable file given on the command line always wins, and nothing is read
before Robot Framework has set the variables up.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from robot.libraries.BuiltIn import BuiltIn, RobotNotRunningError
from robot.utils import timestr_to_secs

_MISSING = object()

# Defaults used when a profile leaves a value out; SLA numbers have no defaults on purpose.
DEFAULTS: dict[str, Any] = {
    "PROFILE": "local",
    "TARGET": "embedded",
    "PLATFORM_UP_OPTIONS": [],
    "PLATFORM_START_TIMEOUT": "90 s",
    "PLATFORM_STOP_TIMEOUT": "30 s",
    "HTTP_TIMEOUT": "5 s",
    "POLL_INTERVAL": "50 ms",
    "SESSION_START_TIMEOUT": "30 s",
    "SESSION_STOP_TIMEOUT": "30 s",
    "SESSION_SETTLE_TIMEOUT": "60 s",
    "VIEWS_SETTLE_TIMEOUT": "2 s",
    "FAULT_REACTION_TIMEOUT": "15 s",
    "CONTAINER_APPEAR_TIMEOUT": "15 s",
    "RECOVERY_TIMEOUT": "60 s",
    "ORPHAN_GRACE_TIMEOUT": "15 s",
    "PLATFORM_LOCK_TIMEOUT": "15 min",
    "CONCURRENT_REQUEST_TIMEOUT": "30 s",
}


class ProfileError(ValueError):
    """Raised when the profile lacks a value or holds one of the wrong shape."""

    ROBOT_SUPPRESS_NAME = True


class Profile:
    """Read-only view of the active profile.

    ``overrides`` win over profile variables; ``variables`` replaces Robot Framework's variables
    entirely (used by unit tests, where Robot Framework is not running).
    """

    def __init__(self, overrides: Mapping[str, Any] | None = None, variables: Mapping[str, Any] | None = None):
        self._overrides = {k.upper(): v for k, v in (overrides or {}).items() if v is not None}
        self._variables = variables

    def _lookup(self, name: str) -> Any:
        if name in self._overrides:
            return self._overrides[name]
        if self._variables is not None:
            return self._variables.get(name, _MISSING)
        try:
            return BuiltIn().get_variable_value(f"${{{name}}}", _MISSING)
        except RobotNotRunningError:
            return _MISSING

    def get(self, name: str, default: Any = _MISSING) -> Any:
        """Return profile value ``name``; fail clearly when it is missing and has no default."""
        value = self._lookup(name)
        if value is _MISSING:
            value = DEFAULTS.get(name, default)
        if value is _MISSING:
            raise ProfileError(
                f"Profile variable ${{{name}}} is not set. Add it to the profile "
                f"(resources/profiles/<profile>.py) or pass it with --variable {name}:<value>."
            )
        return value

    def text(self, name: str, default: Any = _MISSING) -> str:
        value = self.get(name, default)
        return "" if value is None else str(value)

    def seconds(self, name: str, default: Any = _MISSING) -> float:
        """Return a time value of the profile in seconds (accepts ``10 s``, ``500 ms``, ``1.5`` ...)."""
        value = self.get(name, default)
        return to_seconds(value, what=f"profile variable ${{{name}}}")

    def integer(self, name: str, default: Any = _MISSING) -> int:
        value = self.get(name, default)
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ProfileError(f"Profile variable ${{{name}}} must be an integer, got {value!r}.") from None

    def items(self, name: str, default: Any = _MISSING) -> list[str]:
        value = self.get(name, default)
        if value is None or value == "":
            return []
        if isinstance(value, str):
            return value.split()
        return [str(v) for v in value]

    @property
    def target(self) -> str:
        return self.text("TARGET").lower()

    @property
    def is_embedded(self) -> bool:
        return self.target in ("embedded", "local")

    @property
    def contract(self) -> str:
        """The contract the platform under test promises: ``platform`` (docs/platform-contract.md, the embedded
        platform's, every admin call included) or ``deployment`` (docs/deployment-contract.md, what a deployment must
        offer, some calls optional). ``${PLATFORM_CONTRACT}`` overrides the target's."""
        value = str(self.get("PLATFORM_CONTRACT", "") or ("platform" if self.is_embedded else "deployment")).lower()
        if value not in ("platform", "deployment"):
            raise ProfileError(f"${{PLATFORM_CONTRACT}} must be 'platform' or 'deployment', got {value!r}.")
        return value


def to_seconds(value: Any, what: str = "time") -> float:
    """Convert a Robot Framework time value (``2 min``, ``500 ms``, ``1.5``, timedelta) to seconds."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bool) or value is None or value == "":
        raise ProfileError(f"{what} must be a time like '10 s' or '500 ms', got {value!r}.")
    try:
        return float(timestr_to_secs(value))
    except (TypeError, ValueError):
        raise ProfileError(f"{what} must be a time like '10 s' or '500 ms', got {value!r}.") from None


def format_seconds(seconds: float) -> str:
    """Human text for a duration: milliseconds below one second, seconds above."""
    if seconds < 1:
        return f"{seconds * 1000:.1f} ms"
    return f"{seconds:.3f} s"


def counted(count: Any, noun: str, plural: str = "") -> str:
    """``count`` and ``noun`` in the number it takes: ``1 sample``, ``5 samples``, ``0 errors``."""
    return f"{count} {noun if str(count) == '1' else plural or noun + 's'}"
