"""Small client for the Toxiproxy v2 admin API; works with this proxy and with a real Toxiproxy server.

Updates use POST (accepted by every Toxiproxy v2 release; PATCH only by newer ones).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import requests


class ToxiproxyError(Exception):
    """The admin API refused a call; carries the HTTP status and the server's error text."""

    def __init__(self, method: str, path: str, status: int, message: str) -> None:
        super().__init__(f"{method} {path} -> {status}: {message}")
        self.status = status
        self.message = message


class ToxiproxyClient:
    """Thin wrapper over the admin routes; every call has a short timeout so a hung proxy fails a test fast."""

    def __init__(self, base_url: str = "http://127.0.0.1:8474", timeout: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "testbed-faultproxy-client"

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> ToxiproxyClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        url = self.base_url + path
        try:
            response = self.session.request(method, url, json=body, timeout=self.timeout)
        except requests.RequestException as exc:
            raise ToxiproxyError(method, path, 0, f"admin API unreachable at {self.base_url}: {exc}") from None
        if response.status_code >= 400:
            try:
                message = response.json().get("error") or response.text
            except ValueError:
                message = response.text.strip()
            raise ToxiproxyError(method, path, response.status_code, message)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            return response.text  # very old Toxiproxy answers /version in plain text

    @staticmethod
    def _name(name: str) -> str:
        return quote(name, safe="")

    # -- server --

    def version(self) -> Any:
        return self._call("GET", "/version")

    def reset(self) -> None:
        """Enable all proxies and remove all toxics."""
        self._call("POST", "/reset")

    def populate(self, proxies: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return self._call("POST", "/populate", proxies)["proxies"]

    # -- proxies --

    def proxies(self) -> dict[str, dict[str, Any]]:
        return self._call("GET", "/proxies")

    def proxy(self, name: str) -> dict[str, Any]:
        return self._call("GET", f"/proxies/{self._name(name)}")

    def create_proxy(self, name: str, listen: str, upstream: str, enabled: bool = True) -> dict[str, Any]:
        body = {"name": name, "listen": listen, "upstream": upstream, "enabled": enabled}
        return self._call("POST", "/proxies", body)

    def update_proxy(self, name: str, **fields: Any) -> dict[str, Any]:
        return self._call("POST", f"/proxies/{self._name(name)}", fields)

    def delete_proxy(self, name: str) -> None:
        self._call("DELETE", f"/proxies/{self._name(name)}")

    # -- toxics --

    def toxics(self, proxy: str) -> list[dict[str, Any]]:
        return self._call("GET", f"/proxies/{self._name(proxy)}/toxics")

    def toxic(self, proxy: str, name: str) -> dict[str, Any]:
        return self._call("GET", f"/proxies/{self._name(proxy)}/toxics/{self._name(name)}")

    def add_toxic(
        self,
        proxy: str,
        type: str,
        stream: str = "downstream",
        toxicity: float = 1.0,
        attributes: dict[str, Any] | None = None,
        name: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": type,
            "stream": stream,
            "toxicity": toxicity,
            "attributes": dict(attributes or {}),
        }
        if name:
            body["name"] = name
        return self._call("POST", f"/proxies/{self._name(proxy)}/toxics", body)

    def update_toxic(
        self, proxy: str, name: str, attributes: dict[str, Any] | None = None, toxicity: float | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"attributes": dict(attributes or {})}
        if toxicity is not None:
            body["toxicity"] = toxicity
        return self._call("POST", f"/proxies/{self._name(proxy)}/toxics/{self._name(name)}", body)

    def remove_toxic(self, proxy: str, name: str) -> None:
        self._call("DELETE", f"/proxies/{self._name(proxy)}/toxics/{self._name(name)}")
