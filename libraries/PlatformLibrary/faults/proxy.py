"""Keywords that switch hops of the Toxiproxy-compatible fault proxy, always reversibly.

Every hop this library disables is remembered, in memory and in the fault ledger (``chaos_ledger``), and
`Revert All Faults` (use it in teardowns) undoes every fault of this test process (the chaos faults too), enables
the hops again and resets the proxy, so a failing test never leaves the platform broken for the next one. A run
killed before its teardown leaves its faults in the ledger, where the next run finds and reverts them.
"""

from __future__ import annotations

import threading
from urllib.parse import urlsplit

import requests
from robot.api import logger
from robot.api.deco import keyword

from ..aws.session import AwsError, redact
from ..core.base import LibraryComponent, LibraryContext
from . import ledger as chaos_ledger
from .injector import FaultInjector
from .toxiproxy import FaultProxyError, ToxiproxyClient, hop_path

__all__ = ["FaultProxyError", "FaultProxyKeywords"]


class FaultProxyKeywords(LibraryComponent):
    """Fault proxy hops (``dynamodb``, the load-balancer hop ...) of the embedded platform."""

    def __init__(self, ctx: LibraryContext, injector: FaultInjector):
        super().__init__(ctx)
        self._injector = injector
        self._disabled: list[str] = []
        self._ledger_ids: dict[str, str] = {}
        self._http = requests.Session()
        self._lock = threading.Lock()
        self._toxiproxy_hops: list[str] = []  # hops in front of the ALB that this run created

    def _proxy(self) -> ToxiproxyClient:
        return ToxiproxyClient(self.endpoint("FAULT_PROXY_URL"), self.http_timeout, self._http)

    def _has_fault_proxy(self) -> bool:
        try:
            return bool(self.endpoint("FAULT_PROXY_URL"))
        except Exception:  # the endpoints file or the profile has no fault proxy at all
            return False

    @keyword(tags=["faults"])
    def disable_fault_proxy_hop(self, name: str) -> None:
        """Cuts the hop ``name`` (``POST /proxies/<name>`` with ``{"enabled": false}``).

        The hop is remembered (also in the fault ledger, for a run that gets killed); `Revert All Faults`
        enables it again.

        Example:
        | Disable Fault Proxy Hop | dynamodb |
        | [Teardown] | Revert All Faults |
        """
        hop_path(name)
        proxy = self._proxy()
        if name not in self._disabled:
            self._disabled.append(name)  # remember first: a half-applied fault must still be reverted
        ledger = self._injector.ledger_if_running()
        if ledger is not None and name not in self._ledger_ids:
            entry = ledger.record(
                "hop-disabled",
                f"fault proxy hop {name} disabled",
                [{"do": "enable-hop", "proxy": proxy.url, "hop": name}],
                self.context.run_id,
                suite=self.context.current_suite,
                test=self.context.current_test,
            )
            self._ledger_ids[name] = entry["id"]
        proxy.set_enabled(name, False)
        self.info(f"Fault proxy hop '{name}' disabled.")

    @keyword(tags=["faults"])
    def enable_fault_proxy_hop(self, name: str) -> None:
        """Restores the hop ``name`` (``{"enabled": true}``)."""
        self._proxy().set_enabled(name, True)
        if name in self._disabled:
            self._disabled.remove(name)
        fault_id = self._ledger_ids.pop(name, None)
        ledger = self._injector.ledger_if_running()
        if fault_id is not None and ledger is not None:
            ledger.remove(fault_id)
        chaos_ledger.mark_revert()
        self.info(f"Fault proxy hop '{name}' enabled.")

    def reset_fault_proxy(self) -> None:
        """Enables every hop and removes every toxic (``POST /reset``)."""
        self._proxy().reset()
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
        done, failed = self._injector.revert_own_faults()
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

    # ------------------------------------------------------------------ Toxiproxy in front of the ALB (AWS)
    def _alb_proxy(self) -> ToxiproxyClient:
        base = str(self.profile.get("FAULT_PROXY_URL", "") or "")
        if not base:
            raise AwsError("${FAULT_PROXY_URL} (env TOXIPROXY_URL) is empty: no Toxiproxy server to configure.")
        return ToxiproxyClient(base, self.http_timeout)

    @keyword(tags=["aws-only", "faults"])
    def ensure_alb_hop_on_toxiproxy(
        self, name: str = "api", listen: str | None = None, upstream: str | None = None
    ) -> dict:
        """Makes the Toxiproxy server (``${FAULT_PROXY_URL}``) forward ``listen`` to the ALB; returns the hop.

        ``listen`` defaults to ``${TOXIPROXY_LISTEN}``, ``upstream`` to the host and port of ``${ALB_URL}``.
        The hop is named ``api`` like the embedded platform's load-balancer hop, so the fault proxy keywords
        work unchanged; ``${PLATFORM_API_URL}`` must point at ``listen`` for the suite's traffic to take it.
        An existing hop is updated; a hop this keyword created is removed by `Remove ALB Hop From Toxiproxy`.
        """
        listen = listen or str(self.profile.get("TOXIPROXY_LISTEN", "") or "")
        if not listen:
            raise AwsError("Give listen (host:port) or set ${TOXIPROXY_LISTEN}.")
        if not upstream:
            alb_url = str(self.profile.get("ALB_URL", "") or "")
            if not alb_url:
                raise AwsError("Give upstream (host:port) or set ${ALB_URL}.")
            alb = urlsplit(alb_url)
            port = alb.port or (443 if alb.scheme == "https" else 80)
            upstream = f"{alb.hostname}:{port}"
        proxy = self._alb_proxy()
        try:
            if proxy.hop(name) is None:
                hop = proxy.create_hop(name, listen, upstream)
                with self._lock:
                    self._toxiproxy_hops.append(name)
            else:
                hop = proxy.update_hop(name, listen=listen, upstream=upstream, enabled=True)
        except FaultProxyError as error:
            raise AwsError(
                f"Toxiproxy did not take hop {name} ({listen} -> {upstream}): {redact(str(error))}"
            ) from None
        hop = hop or {}
        api_url = str(self.profile.get("PLATFORM_API_URL", "") or "")
        if urlsplit(api_url).netloc != hop.get("listen", listen):
            logger.warn(
                redact(
                    f"${{PLATFORM_API_URL}} {api_url} does not go through Toxiproxy hop {name} ({hop.get('listen')}); "
                    "faults on the hop will not reach the suite's requests."
                )
            )
        self.info(f"Toxiproxy hop {name}: {hop.get('listen')} -> {hop.get('upstream')}.")
        return hop

    @keyword(tags=["aws-only", "faults", "cleanup"])
    def remove_alb_hop_from_toxiproxy(self, name: str = "api") -> bool:
        """Deletes the hop ``name`` if `Ensure ALB Hop On Toxiproxy` created it in this run; returns whether it did."""
        with self._lock:
            if name not in self._toxiproxy_hops:
                self.info(f"Toxiproxy hop {name} was not created by this run; left as it is.")
                return False
            self._toxiproxy_hops.remove(name)
        try:
            self._alb_proxy().delete_hop(name)
        except FaultProxyError as error:
            raise AwsError(f"Deleting Toxiproxy hop {name} failed: {redact(str(error))}") from None
        return True
