"""Keywords that switch hops of the Toxiproxy-compatible fault proxy, always reversibly.

Every hop this library disables is remembered, in memory and in the fault ledger (``chaos_ledger``), and
`Revert All Faults` (use it in teardowns) undoes every fault of this test process (the chaos faults too), enables
the hops again and resets the proxy, so a failing test never leaves the platform broken for the next one. A run
killed before its teardown leaves its faults in the ledger, where the next run finds and reverts them.
"""

from __future__ import annotations

from urllib.parse import quote

import requests
from robot.api.deco import keyword
from robot.running.context import EXECUTION_CONTEXTS

from . import chaos_ledger
from .base import LibraryComponent


class FaultProxyError(AssertionError):
    ROBOT_SUPPRESS_NAME = True


class FaultProxyKeywords(LibraryComponent):
    """Fault proxy hops (``dynamodb``, the load-balancer hop ...) of the embedded platform."""

    def __init__(self, library):
        super().__init__(library)
        self._disabled: list[str] = []
        self._ledger_ids: dict[str, str] = {}
        self._http = requests.Session()

    def _url(self, path: str) -> str:
        base = self.endpoint("FAULT_PROXY_URL")
        if not base:
            raise FaultProxyError("This target has no fault proxy (FAULT_PROXY_URL is empty).")
        return str(base).rstrip("/") + path

    def _post(self, path: str, body: dict | None = None) -> requests.Response:
        url = self._url(path)
        try:
            response = self._http.post(url, json=body, timeout=self.profile.seconds("HTTP_TIMEOUT"))
        except requests.RequestException as error:
            raise FaultProxyError(f"POST {path} to the fault proxy got no answer: {error}") from None
        if response.status_code >= 300:
            raise FaultProxyError(
                f"POST {path} to the fault proxy answered {response.status_code}: {response.text[:300]!r}"
            )
        return response

    def _ledger(self) -> chaos_ledger.FaultLedger | None:
        """The fault ledger of a test run; outside Robot Framework (unit tests) only when one is configured."""
        configured = self.profile.get("FAULT_LEDGER_DIR", None)
        if configured is None and EXECUTION_CONTEXTS.current is None:
            return None
        return chaos_ledger.FaultLedger(configured)

    def _has_fault_proxy(self) -> bool:
        try:
            return bool(self.endpoint("FAULT_PROXY_URL"))
        except Exception:  # the endpoints file or the profile has no fault proxy at all
            return False

    @staticmethod
    def _hop_path(name: str) -> str:
        if not name or not name.strip():
            raise ValueError("Give the name of a fault proxy hop, e.g. dynamodb.")
        return f"/proxies/{quote(name.strip(), safe='')}"

    @keyword(tags=["faults"])
    def get_fault_proxy_hop(self, name: str) -> dict:
        """Returns the hop ``name`` as the fault proxy describes it (``listen``, ``upstream``, ``enabled`` ...)."""
        path = self._hop_path(name)
        try:
            response = self._http.get(self._url(path), timeout=self.profile.seconds("HTTP_TIMEOUT"))
        except requests.RequestException as error:
            raise FaultProxyError(f"GET {path} to the fault proxy got no answer: {error}") from None
        if response.status_code != 200:
            raise FaultProxyError(f"GET {path} answered {response.status_code}: {response.text[:300]!r}")
        return response.json()

    @keyword(tags=["faults"])
    def disable_fault_proxy_hop(self, name: str) -> None:
        """Cuts the hop ``name`` (``POST /proxies/<name>`` with ``{"enabled": false}``).

        The hop is remembered (also in the fault ledger, for a run that gets killed); `Revert All Faults`
        enables it again.

        Example:
        | Disable Fault Proxy Hop | dynamodb |
        | [Teardown] | Revert All Faults |
        """
        path = self._hop_path(name)
        if name not in self._disabled:
            self._disabled.append(name)  # remember first: a half-applied fault must still be reverted
        ledger = self._ledger()
        if ledger is not None and name not in self._ledger_ids:
            entry = ledger.record(
                "hop-disabled",
                f"fault proxy hop {name} disabled",
                [{"do": "enable-hop", "proxy": self._url(""), "hop": name}],
                self.context.run_id,
                suite=self.context.current_suite,
                test=self.context.current_test,
            )
            self._ledger_ids[name] = entry["id"]
        self._post(path, {"enabled": False})
        self.info(f"Fault proxy hop '{name}' disabled.")

    @keyword(tags=["faults"])
    def enable_fault_proxy_hop(self, name: str) -> None:
        """Restores the hop ``name`` (``{"enabled": true}``)."""
        self._post(self._hop_path(name), {"enabled": True})
        if name in self._disabled:
            self._disabled.remove(name)
        fault_id = self._ledger_ids.pop(name, None)
        ledger = self._ledger()
        if fault_id is not None and ledger is not None:
            ledger.remove(fault_id)
        chaos_ledger.mark_revert()
        self.info(f"Fault proxy hop '{name}' enabled.")

    @keyword(tags=["faults", "assertion"])
    def fault_proxy_hop_should_be_enabled(self, name: str) -> None:
        """Fails unless the hop ``name`` is enabled."""
        hop = self.get_fault_proxy_hop(name)
        if not hop.get("enabled", False):
            raise AssertionError(f"Fault proxy hop '{name}' is disabled: {hop}")

    @keyword(tags=["faults"])
    def reset_fault_proxy(self) -> None:
        """Enables every hop and removes every toxic (``POST /reset``)."""
        self._post("/reset")
        self._disabled.clear()
        self.info("Fault proxy reset.")

    @keyword(tags=["faults", "cleanup"])
    def revert_all_faults(self) -> None:
        """Undoes every fault this test process injected: the faults in the fault ledger (toxics, cgroup
        changes, helper processes, a moved workspace, clock skew), then re-enables remembered hops and resets the
        proxy.

        Safe to call when nothing was injected. Every step is attempted; failures are reported together.
        A private chaos platform is not stopped here (see `Stop Private Chaos Platform`).
        """
        problems = []
        chaos = getattr(self.library, "chaos_keywords", None)
        if chaos is not None:
            done, failed = chaos.revert_own_faults()
            problems += failed
            if done:
                self.info("Reverted:\n" + "\n".join(f"- {d}" for d in done))
        for name in list(self._disabled):
            try:
                self.enable_fault_proxy_hop(name)
            except (FaultProxyError, ValueError) as error:
                problems.append(str(error))
        if self._disabled or self._has_fault_proxy():  # a target without a fault proxy has nothing to reset
            try:
                self.reset_fault_proxy()
            except FaultProxyError as error:
                problems.append(str(error))
        if problems:
            raise FaultProxyError("Could not revert every fault:\n" + "\n".join(problems))
