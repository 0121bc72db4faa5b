"""The reaper's admin calls: run a pass now, read what it did, and the check that it recorded an action.

Both calls are optional for a deployment (docs/deployment-contract.md); the embedded platform must have them.
"""

from __future__ import annotations

import json

from robot.api.deco import keyword

from ..core.http_client import ApiResponse
from ..core.profile import format_seconds
from .api import ApiComponent, SessionRef


class ReaperKeywords(ApiComponent):
    """``POST /admin/reaper/run`` and ``GET /admin/reaper``."""

    def _absent_from_deployment(self, response: ApiResponse) -> bool:
        """True when a deployment answers 404 for one of the optional admin calls of docs/deployment-contract.md.

        Only on a deployment (the AWS target): the embedded platform's contract (docs/platform-contract.md) has
        every admin call, so a 404 there is a broken platform and fails like any other answer.
        """
        return response.status == 404 and self.profile.contract == "deployment"

    @keyword(tags=["admin"])
    def run_reaper(self) -> list:
        """Runs one reaper pass now (``POST /admin/reaper/run``) and returns its actions.

        The call is optional for a deployment (docs/deployment-contract.md): where it answers 404 on the AWS target,
        the keyword logs that the deployment runs no reaper pass on demand and returns an empty list; the waits
        after it (``${ORPHAN_GRACE_TIMEOUT}``) then give the reaper's own schedule its time.
        """
        response = self._call("POST", "/admin/reaper/run")
        if self._absent_from_deployment(response):
            self.info(
                f"The deployment runs no reaper pass on demand ({response.describe()}; optional in "
                "docs/deployment-contract.md): the steps after this one wait for the reaper's own schedule, up to "
                f"{format_seconds(self.profile.seconds('ORPHAN_GRACE_TIMEOUT'))} (ORPHAN_GRACE_TIMEOUT)."
            )
            return []
        actions = list(self._expect(response, 200).body.get("actions", []))
        self.info(
            f"Reaper pass took {format_seconds(response.seconds)}; actions: "
            f"{json.dumps(actions, default=str) if actions else 'none'}"
        )
        return actions

    @keyword(tags=["admin"])
    def get_reaper_actions(self) -> list | None:
        """Returns what the reaper has done so far (``GET /admin/reaper``), oldest first: each action has ``action``
        (e.g. ``stop-orphan-container``), ``sessionId``, ``time`` and ``applied``.

        Returns ``None`` where a deployment keeps no record (the call answers 404 on the AWS target; it is optional
        in docs/deployment-contract.md): nothing is known then, which is not the same as nothing done.
        """
        response = self._call("GET", "/admin/reaper")
        if self._absent_from_deployment(response):
            self.info(f"The deployment keeps no record of the reaper's actions: {response.describe()}.")
            return None
        return list(self._expect(response, 200).body.get("actions", []))

    @keyword(tags=["admin", "assertion"])
    def reaper_should_have_recorded(self, session: SessionRef, action: str = "stop-orphan-container") -> list:
        """Fails unless ``GET /admin/reaper`` lists an applied ``action`` for ``session``: the platform promises that
        the reaper records what it did (docs/platform-contract.md). Returns those actions.

        A deployment may keep no such record (docs/deployment-contract.md: optional): where the call answers 404 on
        the AWS target, the keyword logs so and passes, returning an empty list. The reaper is then judged by its
        effect alone, so use this keyword after the steps that check it (the orphaned container stopped, no orphan
        left), as ``suites/recovery/orphan_cleanup.robot`` does. A record that answers 200 without the action fails
        everywhere.

        Example:
        | Reaper Should Have Recorded | ${session} | stop-orphan-container |
        """
        session_id = self.session_id_of(session)
        history = self.get_reaper_actions()
        if history is None:
            self.info(
                f"Not judged by the reaper's record: the deployment keeps none (GET /admin/reaper answered 404; "
                f"optional in docs/deployment-contract.md). Whether the reaper did {action} for session {session_id} "
                "is judged by its effect instead: the steps before this one checked that the orphaned container "
                "stopped and that no orphan is left."
            )
            return []
        found = [a for a in history if a.get("sessionId") == session_id and a.get("action") == action]
        if not found:
            raise AssertionError(
                f"Broken promise: the reaper records what it did. GET /admin/reaper has no {action} for session "
                f"{session_id} (it lists {len(history)} action(s): {sorted({a.get('action') for a in history})})."
            )
        if not all(a.get("applied") for a in found):
            raise AssertionError(f"The reaper recorded {action} for session {session_id} but did not apply it: {found}")
        return found
