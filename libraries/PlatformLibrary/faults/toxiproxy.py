"""The one client of the fault proxy's HTTP API (Toxiproxy's API, which the embedded fault proxy speaks too).

Every keyword that switches a hop, adds or reads a toxic, checks the proxy in the steady state or reverts a fault
from the ledger goes through :class:`ToxiproxyClient`, so an answer of the proxy means the same everywhere and an
error always names the call that failed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import requests


class FaultProxyError(AssertionError):
    """The fault proxy refused a call or gave no answer."""

    ROBOT_SUPPRESS_NAME = True


class FaultProxyGone(FaultProxyError):
    """Nothing listens at the fault proxy's address (the platform and its faults are gone)."""


def hop_path(name: str) -> str:
    if not name or not str(name).strip():
        raise ValueError("Give the name of a fault proxy hop, e.g. dynamodb.")
    return f"/proxies/{quote(str(name).strip(), safe='')}"


class ToxiproxyClient:
    """Hops (``/proxies``) and toxics of one fault proxy, at ``url``; ``timeout`` is seconds per call."""

    def __init__(self, url: str, timeout: float = 5.0, session: requests.Session | None = None):
        if not url:
            raise FaultProxyError("This target has no fault proxy (FAULT_PROXY_URL is empty).")
        self.url = str(url).rstrip("/")
        self.timeout = timeout
        self._http = session or requests

    # ------------------------------------------------------------------ raw
    def call(self, method: str, path: str, body: dict | None = None) -> requests.Response:
        """One call; raises :class:`FaultProxyGone` when nothing listens, :class:`FaultProxyError` on no answer."""
        try:
            return self._http.request(method, self.url + path, json=body, timeout=self.timeout)
        except requests.ConnectionError as error:
            raise FaultProxyGone(
                f"{method} {path} to the fault proxy at {self.url}: nothing answers ({error})"
            ) from None
        except requests.RequestException as error:
            raise FaultProxyError(f"{method} {path} to the fault proxy got no answer: {error}") from None

    def _ok(self, method: str, path: str, body: dict | None = None) -> Any:
        response = self.call(method, path, body)
        if response.status_code >= 300:
            raise FaultProxyError(
                f"{method} {path} to the fault proxy answered {response.status_code}: {response.text[:300]!r}"
            )
        try:
            return response.json() if response.content else None
        except ValueError:
            return None

    # ------------------------------------------------------------------ hops
    def hops(self) -> dict[str, dict]:
        """Every hop by name (``GET /proxies``)."""
        return self._ok("GET", "/proxies") or {}

    def hop(self, name: str) -> dict | None:
        """The hop ``name``, or ``None`` when the proxy has no such hop."""
        response = self.call("GET", hop_path(name))
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise FaultProxyError(f"GET {hop_path(name)} answered {response.status_code}: {response.text[:300]!r}")
        return response.json()

    def set_enabled(self, name: str, enabled: bool) -> dict | None:
        return self._ok("POST", hop_path(name), {"enabled": enabled})

    def enable_hop_if_present(self, name: str) -> str:
        """Enables the hop; ``already gone`` when the proxy no longer has it (reverting a fault)."""
        response = self.call("POST", hop_path(name), {"enabled": True})
        if response.status_code == 404:
            return "already gone"
        if response.status_code >= 300:
            raise FaultProxyError(f"POST {hop_path(name)} answered {response.status_code}: {response.text[:200]!r}")
        return "done"

    def create_hop(self, name: str, listen: str, upstream: str) -> dict:
        return self._ok("POST", "/proxies", {"name": name, "listen": listen, "upstream": upstream})

    def update_hop(self, name: str, **fields: Any) -> dict:
        return self._ok("POST", hop_path(name), fields)

    def delete_hop(self, name: str) -> str:
        return self._delete(hop_path(name))

    def reset(self) -> None:
        """Enables every hop and removes every toxic (``POST /reset``)."""
        self._ok("POST", "/reset")

    # ------------------------------------------------------------------ toxics
    def add_toxic(self, hop: str, body: dict) -> dict:
        return self._ok("POST", f"{hop_path(hop)}/toxics", body)

    def toxic(self, hop: str, name: str) -> dict:
        return self._ok("GET", f"{hop_path(hop)}/toxics/{quote(name, safe='')}")

    def delete_toxic(self, hop: str, name: str) -> str:
        return self._delete(f"{hop_path(hop)}/toxics/{quote(name, safe='')}")

    def _delete(self, path: str) -> str:
        response = self.call("DELETE", path)
        if response.status_code == 404:
            return "already gone"
        if response.status_code >= 300:
            raise FaultProxyError(f"DELETE {path} answered {response.status_code}: {response.text[:200]!r}")
        return "done"

    def problems(self) -> list[str]:
        """What keeps the proxy from its steady state: disabled hops and hops with toxics (empty when none)."""
        try:
            hops = self.hops()
        except FaultProxyError as error:
            return [f"fault proxy: {error}"]
        problems = []
        for name, hop in sorted(hops.items()):
            if not hop.get("enabled", True):
                problems.append(f"hop {name} is disabled")
            toxics = hop.get("toxics") or []
            if toxics:
                problems.append(f"hop {name} has toxics {[t.get('name') for t in toxics]}")
        return problems


def mesh_hop_traces(proxy_url: Callable[[], str]) -> Callable[[str], list[str]]:
    """What a session still holds on the fault proxy: its service-mesh hop ``mesh-<sessionId>``, which deleting the
    session must remove. Handed to the container backend by the library's facade (the one fault-proxy client)."""

    def traces(session_id: str) -> list[str]:
        url = proxy_url()
        if not url:
            return []
        name = f"mesh-{session_id}"
        try:
            hop = ToxiproxyClient(url).hop(name)
        except FaultProxyError as error:
            return [f"the fault proxy at {url} did not answer about hop {name}: {error}"]
        return [f"service-mesh hop {name} still routes to {hop.get('upstream')}"] if hop else []

    return traces
