"""The fault injector: the safety rules and the bookkeeping every fault goes through, whichever keyword injects it.

Kept apart from the keywords (as chaostoolkit keeps its rollbacks apart from its actions) so that every chaos
component, and the fault proxy keywords, receive the one injector in their constructor instead of inheriting its
methods. It decides whether a fault may be injected (the profile's chaos guard, sessions this run created, faults
on the whole platform only on a private platform or with the platform held exclusively), writes each fault into the
fault ledger before it is applied, marks it active once it is, reverts it at once when applying failed, and knows
when the test's last fault was reverted (recovery times count from there).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from robot.running.context import EXECUTION_CONTEXTS

from ..aws.safety import ChaosGuard, ChaosNotAllowed, ChaosRefused, check_chaos_allowed
from ..core.base import LibraryComponent, LibraryContext
from ..sessions.access import PlatformAccessKeywords
from ..sessions.api import SessionRef
from . import ledger as chaos_ledger


class FaultInjector(LibraryComponent):
    """Guards, fault ledger and record/activate/undo for every fault; also a listener that notes test starts."""

    ROBOT_LISTENER_API_VERSION = 3

    def __init__(self, ctx: LibraryContext, access: PlatformAccessKeywords):
        super().__init__(ctx)
        self._access = access
        self.test_started = time.monotonic()
        self.injected_at: float | None = None
        self.private_platform: dict[str, Any] | None = None

    # ------------------------------------------------------------------ listener
    def start_test(self, data, result):
        self.test_started = time.monotonic()

    def since_revert(self) -> float:
        """When the last fault of this test was reverted (now, when none was): recovery times count from there."""
        reverted = chaos_ledger.last_revert()
        return reverted if reverted is not None and reverted >= self.test_started else time.monotonic()

    # ------------------------------------------------------------------ ledger
    @property
    def ledger(self) -> chaos_ledger.FaultLedger:
        return chaos_ledger.FaultLedger(self.profile.text("FAULT_LEDGER_DIR", str(chaos_ledger.DEFAULT_DIR)))

    def ledger_if_running(self) -> chaos_ledger.FaultLedger | None:
        """The ledger during a test run; outside Robot Framework (unit tests) only when one is configured."""
        configured = self.profile.get("FAULT_LEDGER_DIR", None)
        if configured is None and EXECUTION_CONTEXTS.current is None:
            return None
        return chaos_ledger.FaultLedger(configured)

    def record(self, kind: str, description: str, undo: list[dict]) -> dict:
        """Writes the fault and how to undo it into the ledger, before it is applied."""
        entry = self.ledger.record(
            kind,
            description,
            undo,
            self.context.run_id,
            suite=self.context.current_suite,
            test=self.context.current_test,
            platform=str(self.ctx.endpoints.local_platform_dir or "") or None,
        )
        self.injected_at = time.monotonic()
        return entry

    def activate(self, entry: dict, **changes: Any) -> str:
        """Marks an applied fault active and returns its id (what the inject keywords return)."""
        self.ledger.update(entry["id"], state="active", **changes)
        self.info(f"Fault {entry['id']} injected: {entry['description']}.")
        return entry["id"]

    def undo_now(self, entry: dict) -> None:
        """A fault that failed half-way is reverted at once; the original error is what the test sees."""
        try:
            chaos_ledger.revert_entry(self.ledger, entry, self.http_timeout)
        except chaos_ledger.FaultRevertError as error:
            self.info(f"Reverting the half-applied fault failed too: {error}")

    def revert_own_faults(self, include_platforms: bool = False) -> tuple[list[str], list[str]]:
        """Undoes this process's ledger entries (its private platform only on request): (done, problems)."""
        ledger = self.ledger
        mine = [e for e in ledger.mine() if include_platforms or e.get("kind") != "private-platform"]
        if not mine:
            return [], []
        return chaos_ledger.revert_entries(ledger, mine, self.http_timeout)

    # ------------------------------------------------------------------ guards
    def allow(self, what: str) -> None:
        """The profile's chaos guard (``${CHAOS_ALLOWED}``, and on AWS the production guard) must allow ``what``."""
        check_chaos_allowed(self.ctx, what)

    def guard_session(self, session: SessionRef, what: str = "inject a fault into a session") -> str:
        """Allowed, and the session is one this run created; returns its id."""
        self.allow(what)
        session_id = self.session_id_of(session)
        if session_id not in self.ctx.tracker.all_ids():
            raise ChaosRefused(
                f"Session {session_id} was not created by this run; chaos touches only sessions this run created "
                "(Create Session remembers them)."
            )
        return session_id

    def on_private_platform(self) -> bool:
        return (
            self.private_platform is not None
            and Path(self.private_platform["state"]) == self.ctx.endpoints.local_platform_dir
        )

    def guard_whole_platform(self, what: str) -> None:
        """A fault on the whole platform: only on a private platform, or with the platform held exclusively."""
        self.allow(f"inject {what[0].lower()}{what[1:]}")
        if self.on_private_platform() or self._access.holds_exclusive():
            return
        raise ChaosRefused(
            f"{what} hits the whole platform. Run it on a private platform (Start Private Chaos Platform in the "
            "suite setup) or take the platform to yourself first (Acquire Platform Access    exclusive), so "
            "suites running beside this one are not broken."
        )

    def guard_deployment(self, what: str) -> ChaosGuard:
        """A fault on the deployment itself (its API tier, its route to DynamoDB), beyond this run's own sessions;
        returns the guard.

        On the embedded platform this is `guard_whole_platform`. On AWS the profile must opt in
        (``${CHAOS_SCOPE}`` ``deployment``) and this run must hold the deployment exclusively (`Acquire Platform
        Access` ``exclusive``); otherwise the test is skipped with the reason, as for any chaos the profile refuses.
        """
        if self.ctx.endpoints.local_platform_dir is not None:  # a platform of this machine: private or held
            self.guard_whole_platform(what)
            return ChaosGuard.from_context(self.ctx)
        guard = ChaosGuard.from_context(self.ctx)
        action = f"{what[0].lower()}{what[1:]}"
        guard.check_deployment(action)
        if not self._access.holds_exclusive():
            raise ChaosNotAllowed(
                f"Refused to {action}: it hits the whole deployment, so it runs only while this run holds the "
                "deployment exclusively (Acquire Platform Access    exclusive; with ${PLATFORM_LOCK_TABLE} every "
                "runner against the deployment sees that lease), and this test does not hold it."
            )
        return guard
