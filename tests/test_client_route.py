"""A partition between this run's clients and the API (faults/partition.py, faults/clientroute/).

The probing clients are the library's one API client taking the route that can be cut: on AWS its connections go to
a hop of a fault proxy the run starts on this machine (`PlatformApiClient.through`), while the requests still name the
API's host (``Host``, TLS SNI and certificate check, SigV4); the partition is a black hole on that hop, recorded in the
fault ledger, and touches nothing else the run sends. On the embedded platform it is the ``api`` hop, as before.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from PlatformLibrary.core.http_client import PlatformApiClient
from PlatformLibrary.faults.clientroute import create_client_route
from PlatformLibrary.faults.clientroute.aws import RunnerHopRoute, api_address
from PlatformLibrary.faults.clientroute.embedded import LoadBalancerHopRoute
from PlatformLibrary.faults.ledger import FaultLedger

from tests.local_http import send_json, serve
from tests.test_aws_support import make_library, use_fake_credentials
from tests.test_aws_toxiproxy import toxiproxy  # noqa: F401 - the fixture

ROOT = Path(__file__).resolve().parents[1]


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hosts: list[str | None] = []

    def do_GET(self) -> None:
        type(self).hosts.append(self.headers.get("Host"))
        send_json(self, 200, json.dumps({"status": "ok", "path": self.path}).encode())

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def api() -> Iterator[str]:
    _Handler.hosts = []
    yield from serve(_Handler)


def certificate_for(folder: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate naming only the DNS name ``name`` (no address)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: no certificate for the https server")
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={name}",
         "-addext", f"subjectAltName=DNS:{name}", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


def hop_to(proxy_url: str, upstream: str, name: str = "hop") -> str:
    answer = requests.post(
        f"{proxy_url}/proxies", json={"name": name, "listen": "127.0.0.1:0", "upstream": upstream}, timeout=5
    )
    answer.raise_for_status()
    return answer.json()["listen"]


def test_a_client_through_a_hop_still_names_the_api_s_host(api, toxiproxy):  # noqa: F811
    listen = hop_to(toxiproxy, api_address(api))
    direct = PlatformApiClient(api, headers=lambda: {"Authorization": "Bearer t"})
    through = direct.through(listen)
    assert through.via == listen and direct.via is None
    answer = through.request("GET", "/health")
    assert answer.status == 200 and answer.body["path"] == "/health"
    assert _Handler.hosts == [api.split("//", 1)[1]], "the request names the API's host, not the hop's"
    requests.post(
        f"{toxiproxy}/proxies/hop/toxics",
        json={"name": "cut", "type": "timeout", "stream": "upstream", "attributes": {"timeout": 0}},
        timeout=5,
    ).raise_for_status()
    with pytest.raises(requests.ReadTimeout):
        through.request("GET", "/health", timeout=0.5)
    assert direct.request("GET", "/health").status == 200, "only the hop's traffic is cut"


def test_https_through_a_hop_checks_the_api_s_certificate_by_its_name(tmp_path, toxiproxy):  # noqa: F811
    cert, key = certificate_for(tmp_path, "localhost")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    other, _ = certificate_for(tmp_path, "elsewhere.example")
    for url in serve(_Handler, context):
        port = url.rsplit(":", 1)[1]
        listen = hop_to(toxiproxy, f"127.0.0.1:{port}")
        # The certificate names localhost only: a check against the hop's address (127.0.0.1) would fail.
        client = PlatformApiClient(f"https://localhost:{port}", verify=lambda: str(cert)).through(listen)
        assert client.request("GET", "/health").status == 200
        distrusting = PlatformApiClient(f"https://localhost:{port}", verify=lambda: str(other)).through(listen)
        with pytest.raises(requests.exceptions.SSLError):
            distrusting.request("GET", "/health")


@pytest.fixture
def aws_library(api, tmp_path, monkeypatch):
    use_fake_credentials(monkeypatch)
    library = make_library(
        PLATFORM_API_URL=api, FAULT_LEDGER_DIR=str(tmp_path), CHAOS_CLIENT_TIMEOUT="0.3 s", RECOVERY_TIMEOUT="5 s"
    )
    yield library
    for route in component_routes(library):
        route.close()


def component_routes(library) -> list:
    return list(library.keywords["cut_off_api_from_its_clients"].__self__._routes.values())


def test_on_aws_the_partition_is_a_black_hole_on_the_run_s_own_hop_and_nothing_else(aws_library, tmp_path):
    keywords = aws_library.keywords
    fault = keywords["cut_off_api_from_its_clients"]()
    [route] = component_routes(aws_library)
    assert isinstance(route, RunnerHopRoute)
    keywords["start_retrying_api_client"]("reader", "/sessions/s-1")
    [entry] = FaultLedger(tmp_path).entries()
    assert entry["id"] == fault and entry["kind"] == "toxic" and entry["toxic"]["hop"] == "api-clients"
    assert "between this run's clients and the API" in entry["description"]
    keywords["api_request_should_time_out"]("/sessions/s-1")
    keywords["retrying_api_client_should_still_be_waiting"]("reader", attempts=2)
    assert aws_library.ctx.api.request("GET", "/health").status == 200, "the run's other calls still get through"
    keywords["every_injected_fault_should_have_fired"]()
    keywords["revert_fault"](fault)
    assert keywords["wait_until_retrying_api_client_gets_through"]("reader") < 5
    assert FaultLedger(tmp_path).entries() == []
    proxy = route._proc
    route.close()
    assert proxy.poll() is not None, "the run's fault proxy ends with the run"


def test_the_run_s_fault_proxy_ends_when_the_run_is_killed(tmp_path):
    """A run killed with SIGKILL takes its fault proxy (and so the partition) with it: --exit-with-parent."""
    ready = tmp_path / "ready.json"
    child = f"[sys.executable, '-m', 'testbed.faultproxy', '--port', '0', '--ready-file', {str(ready)!r}, " + (
        "'--exit-with-parent']"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", f"import subprocess, sys, time; subprocess.Popen({child}); time.sleep(60)"], cwd=ROOT
    )
    deadline = time.monotonic() + 15
    while not ready.exists() or not ready.read_text().strip():
        assert time.monotonic() < deadline, "fault proxy did not start"
        time.sleep(0.02)
    pid = json.loads(ready.read_text())["pid"]
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait(5)
    deadline = time.monotonic() + 5
    while Path(f"/proc/{pid}").exists() and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z":
        assert time.monotonic() < deadline, "the fault proxy outlived the run that started it"
        time.sleep(0.05)


class RecordingNetwork:
    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple]] = []

    def cut_off_fault_proxy_hop(self, hop: str) -> str:
        self.calls.append(("cut_off_fault_proxy_hop", (hop,)))
        return "fault-1"


def test_the_backend_is_chosen_in_one_place_and_the_embedded_one_is_the_load_balancer_hop():
    library, network = make_library(), RecordingNetwork()
    embedded = create_client_route("embedded", library.ctx, None, network)
    assert isinstance(embedded, LoadBalancerHopRoute)
    assert embedded.client() is library.ctx.api, "every client of the embedded platform takes the api hop"
    assert embedded.cut_off() == "fault-1" and network.calls == [("cut_off_fault_proxy_hop", ("api",))]
    assert isinstance(create_client_route("aws", library.ctx, None, network), RunnerHopRoute)
    with pytest.raises(ValueError, match="Unknown target"):
        create_client_route("gcp", library.ctx, None, network)


def test_the_hop_points_at_the_api_s_host_and_port():
    assert api_address("http://internal-sessions-1.eu-west-1.elb.amazonaws.com") == (
        "internal-sessions-1.eu-west-1.elb.amazonaws.com:80"
    )
    assert api_address("https://api.example.com/prod") == "api.example.com:443"
    assert api_address("http://127.0.0.1:18080") == "127.0.0.1:18080"
