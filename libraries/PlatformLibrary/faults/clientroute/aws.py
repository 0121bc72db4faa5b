"""This run's route to the API on AWS: a hop of a fault proxy that the run starts on this machine, between its own
clients and the API's address (``${PLATFORM_API_URL}``, the ALB by default).

A client-side partition needs no AWS action: the clients that must see it are this run's. The fault proxy is the
repository's own (``python -m testbed.faultproxy``, Toxiproxy's admin API), started on first use on 127.0.0.1 with a
free port, ended with the run (and by itself when the run's process dies: ``--exit-with-parent``). Its hop
``api-clients`` listens on 127.0.0.1 and forwards to the API's host and port; the probing clients are the library's one
API client with their connections sent to that hop (`PlatformApiClient.through`): the same authentication or SigV4, TLS
(the handshake and the certificate check still name the API's host) and contract mapping. The partition is the
``timeout`` toxic (a black hole) on that hop, recorded in the fault ledger like any toxic; it touches this run's probe
connections only, so it needs no ``${CHAOS_SCOPE}`` ``deployment``, only the chaos guard.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from ...core.base import LibraryContext
from ...core.http_client import PlatformApiClient
from ..injector import FaultInjector
from ..ledger import ChaosError
from ..network import ChaosNetworkKeywords
from ..toxiproxy import FaultProxyError, ToxiproxyClient
from .base import ClientRoute

HOP = "api-clients"
START_TIMEOUT_S = 15.0  # the fault proxy is a small Python process: it answers within a second on a quiet machine


def api_address(base_url: str) -> str:
    """``host:port`` of the API's URL (the port from the scheme when the URL names none)."""
    parts = urlsplit(base_url)
    if not parts.hostname:
        raise ChaosError(f"The API's URL {base_url!r} names no host, so no hop can be put in front of it.")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{host}:{port}"


class RunnerHopRoute(ClientRoute):
    name = "this run's own hop in front of the API (a fault proxy on this machine)"

    def __init__(self, ctx: LibraryContext, injector: FaultInjector, network: ChaosNetworkKeywords):
        self.ctx = ctx
        self.injector = injector
        self.network = network
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._folder: Path | None = None
        self._admin = ""
        self._listen = ""
        self._upstream = ""
        self._client: PlatformApiClient | None = None

    # ------------------------------------------------------------------ the fault proxy and its hop
    def _start_proxy(self) -> str:
        """Starts the fault proxy; returns its admin URL once it serves."""
        folder = Path(tempfile.mkdtemp(prefix="api-clients-hop-"))
        ready, log = folder / "ready.json", folder / "faultproxy.log"
        command = [sys.executable, "-m", "testbed.faultproxy", "--port", "0", "--ready-file", str(ready)]
        with log.open("ab") as output:
            proc = subprocess.Popen(
                [*command, "--exit-with-parent", "--log-level", "WARNING"],
                cwd=self.ctx.project_root,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=output,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                port = int(json.loads(ready.read_text())["admin_port"])
                break
            except (OSError, ValueError, KeyError):
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                if proc.poll() is None:
                    proc.kill()
                proc.wait(5)
                error = log.read_text(errors="replace").strip()[-500:]
                shutil.rmtree(folder, ignore_errors=True)
                raise ChaosError(
                    f"The fault proxy for this run's clients did not start within {START_TIMEOUT_S:g} s "
                    f"(exit code {proc.returncode}): {error or 'no output'}"
                )
            time.sleep(0.02)
        self._proc, self._folder = proc, folder
        return f"http://127.0.0.1:{port}"

    def _proxy(self) -> ToxiproxyClient:
        return ToxiproxyClient(self._admin, self.ctx.profile.seconds("HTTP_TIMEOUT"))

    def hop(self) -> str:
        """The hop's address (``127.0.0.1:<port>``): the fault proxy and its hop are made on first use, and the hop is
        pointed at the API's address again should that change."""
        upstream = api_address(self.ctx.api.base_url)
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._stop_proxy()
                self._admin = self._start_proxy()
            try:
                if not self._listen:
                    self._listen = str(self._proxy().create_hop(HOP, "127.0.0.1:0", upstream)["listen"])
                    self._upstream = upstream
                elif upstream != self._upstream:
                    self._proxy().update_hop(HOP, upstream=upstream)
                    self._upstream = upstream
            except (FaultProxyError, KeyError, TypeError) as error:
                raise ChaosError(f"The fault proxy for this run's clients did not take hop {HOP}: {error}") from None
            return self._listen

    def _stop_proxy(self) -> None:
        proc, folder = self._proc, self._folder
        self._proc, self._folder, self._admin, self._listen, self._upstream, self._client = None, None, "", "", "", None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)

    # ------------------------------------------------------------------ the route
    def client(self) -> PlatformApiClient:
        listen = self.hop()
        if self._client is None or self._client.via != listen:
            self._client = self.ctx.api.through(listen)
        return self._client

    def cut_off(self) -> str:
        self.injector.allow("cut this run's clients off the API")
        self.hop()
        return self.network.add_hop_toxic(
            HOP,
            {"type": "timeout", "stream": "upstream", "attributes": {"timeout": 0}},
            f"network partition (black hole) between this run's clients and the API ({self._upstream})",
            proxy=self._proxy(),
        )

    def close(self) -> None:
        with self._lock:
            self._stop_proxy()
