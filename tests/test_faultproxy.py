"""Tests of the fault proxy (testbed.faultproxy) through its real process, real sockets and its admin API."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from testbed.faultproxy.client import ToxiproxyClient, ToxiproxyError

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


# --- helpers -----------------------------------------------------------------------------------------------


def wait_for(predicate: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> Any:
    """Poll until ``predicate`` returns something truthy; fail with ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)


def port_of(listen: str) -> int:
    return int(listen.rsplit(":", 1)[1])


def stop_pid(proc: subprocess.Popen[bytes]) -> None:
    """Stop a process we started, by its PID: SIGTERM, then SIGKILL if it does not exit."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)


def connect(port: int, timeout: float = 2.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError(f"EOF after {len(data)} of {n} bytes")
        data += chunk
    return bytes(data)


def recv_until_eof(sock: socket.socket) -> bytes:
    data = bytearray()
    while chunk := sock.recv(65536):
        data += chunk
    return bytes(data)


def roundtrip(sock: socket.socket, payload: bytes = b"ping") -> float:
    start = time.perf_counter()
    sock.sendall(payload)
    assert recv_exactly(sock, len(payload)) == payload
    return time.perf_counter() - start


# --- fixtures ----------------------------------------------------------------------------------------------


class EchoHandler(socketserver.BaseRequestHandler):
    """Echo until EOF, then half-close: lets tests see both directions and half-close handling."""

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while data := sock.recv(65536):
                sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass


class EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@pytest.fixture(scope="module")
def echo_port() -> Iterator[int]:
    server = EchoServer(("127.0.0.1", 0), EchoHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


class FaultProxy:
    def __init__(self, proc: subprocess.Popen[bytes], admin_port: int, state_file: Path) -> None:
        self.proc = proc
        self.admin_port = admin_port
        self.url = f"http://127.0.0.1:{admin_port}"
        self.state_file = state_file
        self.client = ToxiproxyClient(self.url)


def start_proxy(tmp: Path, *extra: str) -> tuple[subprocess.Popen[bytes], dict[str, int]]:
    ready = tmp / "ready.json"
    ready.unlink(missing_ok=True)
    cmd = [PY, "-m", "testbed.faultproxy", "--port", "0", "--ready-file", str(ready), *extra]
    log = tmp / "faultproxy.log"
    with log.open("ab") as log_fh:  # a file, not a pipe: an unread pipe could fill up and stall the proxy
        proc = subprocess.Popen(cmd, cwd=ROOT, stderr=log_fh)
    try:
        info = wait_for(
            lambda: proc.poll() is not None or (ready.exists() and json.loads(ready.read_text())),
            timeout=10,
            what="fault proxy ready file",
        )
    except BaseException:
        stop_pid(proc)
        raise
    if proc.poll() is not None:
        raise AssertionError(f"fault proxy exited with {proc.returncode}: {log.read_text()}")
    return proc, info


@pytest.fixture(scope="module")
def fp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultProxy]:
    tmp = tmp_path_factory.mktemp("faultproxy")
    state = tmp / "state.json"
    proc, info = start_proxy(tmp, "--state-file", str(state), "--log-level", "WARNING")
    assert info["pid"] == proc.pid
    proxy = FaultProxy(proc, info["admin_port"], state)
    yield proxy
    proxy.client.close()
    stop_pid(proc)


@pytest.fixture
def client(fp: FaultProxy) -> Iterator[ToxiproxyClient]:
    """The admin client, with every proxy deleted after the test so tests stay independent."""
    yield fp.client
    for name in list(fp.client.proxies()):
        fp.client.delete_proxy(name)


@pytest.fixture
def echo_proxy(client: ToxiproxyClient, echo_port: int) -> int:
    """A proxy named 'echo' in front of the echo server; returns its listen port."""
    created = client.create_proxy("echo", "127.0.0.1:0", f"127.0.0.1:{echo_port}")
    return port_of(created["listen"])


# --- admin API ---------------------------------------------------------------------------------------------


def test_ready_file_version_and_empty_list(fp: FaultProxy, client: ToxiproxyClient) -> None:
    assert client.version()["version"].startswith("2.")
    assert client.proxies() == {}


def test_proxy_crud(client: ToxiproxyClient, echo_port: int) -> None:
    created = client.create_proxy("api", "127.0.0.1:0", f"127.0.0.1:{echo_port}")
    assert created["name"] == "api" and created["enabled"] is True and created["toxics"] == []
    port = port_of(created["listen"])
    assert port > 0
    assert client.proxies()["api"]["listen"] == created["listen"]
    assert client.proxy("api")["upstream"] == f"127.0.0.1:{echo_port}"
    updated = client.update_proxy("api", upstream=f"localhost:{echo_port}")
    assert updated["upstream"] == f"localhost:{echo_port}"
    with connect(port_of(updated["listen"])) as sock:
        assert roundtrip(sock) < 1
    client.delete_proxy("api")
    assert "api" not in client.proxies()
    with pytest.raises(ToxiproxyError) as err:
        client.proxy("api")
    assert err.value.status == 404 and err.value.message == "proxy not found"


def test_api_errors(fp: FaultProxy, client: ToxiproxyClient, echo_port: int) -> None:
    client.create_proxy("dup", "127.0.0.1:0", f"127.0.0.1:{echo_port}")
    with pytest.raises(ToxiproxyError) as err:
        client.create_proxy("dup", "127.0.0.1:0", f"127.0.0.1:{echo_port}")
    assert err.value.status == 409 and "already exists" in err.value.message

    bad = requests.post(f"{fp.url}/proxies", data=b"{not json", timeout=5)
    assert bad.status_code == 400
    assert bad.json()["status"] == 400 and "invalid JSON" in bad.json()["error"]

    missing = requests.post(f"{fp.url}/proxies", json={"name": "x"}, timeout=5)
    assert missing.status_code == 400 and missing.json()["error"] == "missing required field: upstream"

    with pytest.raises(ToxiproxyError) as err:
        client.create_proxy("wide", "0.0.0.0:0", f"127.0.0.1:{echo_port}")
    assert err.value.status == 400 and "loopback" in err.value.message

    assert requests.get(f"{fp.url}/nope", timeout=5).status_code == 404
    assert requests.put(f"{fp.url}/proxies", timeout=5).status_code == 405
    browser = requests.get(f"{fp.url}/proxies", headers={"User-Agent": "Mozilla/5.0"}, timeout=5)
    assert browser.status_code == 403

    with pytest.raises(ToxiproxyError) as err:
        client.add_toxic("dup", "nonsense")
    assert err.value.status == 400 and "invalid toxic type" in err.value.message
    with pytest.raises(ToxiproxyError) as err:
        client.add_toxic("dup", "latency", attributes={"latency": "slow"})
    assert err.value.status == 400 and "integer" in err.value.message
    with pytest.raises(ToxiproxyError) as err:
        client.add_toxic("dup", "latency", stream="sideways")
    assert err.value.status == 400 and "stream was invalid" in err.value.message
    client.add_toxic("dup", "latency", attributes={"latency": 1})
    with pytest.raises(ToxiproxyError) as err:
        client.add_toxic("dup", "latency", attributes={"latency": 1})
    assert err.value.status == 409
    with pytest.raises(ToxiproxyError) as err:
        client.remove_toxic("dup", "missing")
    assert err.value.status == 404 and err.value.message == "toxic not found"


def test_non_loopback_admin_bind_refused(tmp_path: Path) -> None:
    proc = subprocess.run(
        [PY, "-m", "testbed.faultproxy", "--host", "0.0.0.0", "--port", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert proc.returncode == 2
    assert "loopback" in proc.stderr and "Traceback" not in proc.stderr


def test_bad_config_refused(tmp_path: Path) -> None:
    config = tmp_path / "proxies.json"
    config.write_text('[{"name": "x"}]')
    proc = subprocess.run(
        [PY, "-m", "testbed.faultproxy", "--port", "0", "--config", str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert proc.returncode == 2
    assert "missing required field: upstream" in proc.stderr and "Traceback" not in proc.stderr


def test_config_populates_at_start(tmp_path: Path, echo_port: int) -> None:
    config = tmp_path / "proxies.json"
    config.write_text(json.dumps([{"name": "cfg", "listen": "127.0.0.1:0", "upstream": f"127.0.0.1:{echo_port}"}]))
    proc, info = start_proxy(tmp_path, "--config", str(config))
    try:
        with ToxiproxyClient(f"http://127.0.0.1:{info['admin_port']}") as cl:
            listen = cl.proxies()["cfg"]["listen"]
        with connect(port_of(listen)) as sock:
            roundtrip(sock)
    finally:
        stop_pid(proc)
    assert proc.returncode == 0
    assert not (tmp_path / "ready.json").exists()


# --- forwarding --------------------------------------------------------------------------------------------


def test_forwarding_bidirectional_with_half_close(echo_proxy: int) -> None:
    payload = os.urandom(3 * 1024 * 1024)
    with connect(echo_proxy, timeout=10) as sock:
        sender = threading.Thread(target=lambda: (sock.sendall(payload), sock.shutdown(socket.SHUT_WR)))
        sender.start()
        received = recv_until_eof(sock)  # the echo server only closes after seeing our EOF through the proxy
        sender.join()
    assert received == payload


def test_disable_drops_connections_and_reenable_same_port(client: ToxiproxyClient, echo_proxy: int) -> None:
    sock = connect(echo_proxy)
    roundtrip(sock)
    client.update_proxy("echo", enabled=False)
    assert client.proxy("echo")["enabled"] is False
    with contextlib.suppress(ConnectionResetError):
        assert sock.recv(10) == b""
    sock.close()
    with pytest.raises(ConnectionRefusedError):
        connect(echo_proxy)
    updated = client.update_proxy("echo", enabled=True)
    assert port_of(updated["listen"]) == echo_proxy
    with connect(echo_proxy) as sock:
        roundtrip(sock)


def test_reset_enables_all_and_removes_toxics(client: ToxiproxyClient, echo_proxy: int) -> None:
    client.add_toxic("echo", "latency", attributes={"latency": 500})
    client.update_proxy("echo", enabled=False)
    client.reset()
    proxy = client.proxy("echo")
    assert proxy["enabled"] is True and proxy["toxics"] == []
    with connect(echo_proxy) as sock:
        assert roundtrip(sock) < 0.25


def test_populate_creates_and_is_idempotent(client: ToxiproxyClient, echo_port: int) -> None:
    spec = [
        {"name": "p1", "listen": "127.0.0.1:0", "upstream": f"127.0.0.1:{echo_port}"},
        {"name": "p2", "listen": "127.0.0.1:0", "upstream": f"127.0.0.1:{echo_port}", "enabled": False},
    ]
    first = {p["name"]: p for p in client.populate(spec)}
    assert first["p1"]["enabled"] and not first["p2"]["enabled"]
    again = {p["name"]: p for p in client.populate(spec)}
    assert again["p1"]["listen"] == first["p1"]["listen"]
    with pytest.raises(ToxiproxyError) as err:
        client.populate([{"name": "p3", "upstream": "nowhere"}])
    assert err.value.status == 400 and "host:port" in err.value.message
    assert "p3" not in client.proxies()


def test_state_file_records_active_toxics(fp: FaultProxy, client: ToxiproxyClient, echo_proxy: int) -> None:
    client.add_toxic("echo", "latency", name="slow", attributes={"latency": 10})
    state = json.loads(fp.state_file.read_text())
    assert state["running"] is True and state["pid"] == fp.proc.pid
    assert [t["name"] for t in state["proxies"]["echo"]["toxics"]] == ["slow"]
    client.remove_toxic("echo", "slow")
    assert json.loads(fp.state_file.read_text())["proxies"]["echo"]["toxics"] == []


def test_upstream_down_closes_client(client: ToxiproxyClient) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    created = client.create_proxy("dead", "127.0.0.1:0", f"127.0.0.1:{dead_port}")
    with connect(port_of(created["listen"])) as sock, contextlib.suppress(ConnectionResetError):
        assert sock.recv(10) == b""


# --- toxics ------------------------------------------------------------------------------------------------


def test_latency_toxic_adds_delay_on_existing_connection(client: ToxiproxyClient, echo_proxy: int) -> None:
    with connect(echo_proxy) as sock:
        base = min(roundtrip(sock) for _ in range(5))
        toxic = client.add_toxic("echo", "latency", attributes={"latency": 120, "jitter": 10})
        assert toxic["name"] == "latency_downstream" and toxic["stream"] == "downstream"
        slowed = [roundtrip(sock) for _ in range(3)]
        assert all(0.105 <= rtt < 0.4 for rtt in slowed), slowed
        client.remove_toxic("echo", "latency_downstream")
        assert roundtrip(sock) < base + 0.05


def test_toxicity_zero_has_no_effect(client: ToxiproxyClient, echo_proxy: int) -> None:
    client.add_toxic("echo", "latency", toxicity=0.0, attributes={"latency": 300})
    with connect(echo_proxy) as sock:
        assert max(roundtrip(sock) for _ in range(3)) < 0.2


def test_toxic_update_changes_attributes(client: ToxiproxyClient, echo_proxy: int) -> None:
    client.add_toxic("echo", "latency", name="lat", stream="upstream", attributes={"latency": 300})
    updated = client.update_toxic("echo", "lat", attributes={"latency": 50})
    assert updated["attributes"] == {"latency": 50, "jitter": 0}
    assert client.toxic("echo", "lat")["stream"] == "upstream"
    with connect(echo_proxy) as sock:
        assert 0.045 <= roundtrip(sock) < 0.25


def test_bandwidth_toxic_limits_rate(client: ToxiproxyClient, echo_proxy: int) -> None:
    client.add_toxic("echo", "bandwidth", attributes={"rate": 200})  # 200 KB/s downstream
    payload = os.urandom(60_000)
    with connect(echo_proxy, timeout=5) as sock:
        elapsed = roundtrip(sock, payload)
    assert 0.25 <= elapsed < 1.0, elapsed  # 60 KB at 200 KB/s = 0.3 s


def test_timeout_zero_holds_and_removal_closes(client: ToxiproxyClient, echo_proxy: int) -> None:
    client.add_toxic("echo", "timeout", stream="upstream", attributes={"timeout": 0})
    with connect(echo_proxy, timeout=0.3) as sock:
        sock.sendall(b"hello")
        with pytest.raises(TimeoutError):
            sock.recv(10)  # held: nothing comes back and the connection stays open
        client.remove_toxic("echo", "timeout_upstream")
        sock.settimeout(2)
        with contextlib.suppress(ConnectionResetError):
            assert sock.recv(10) == b""  # Toxiproxy closes held connections when the toxic goes


def test_timeout_closes_after_delay(client: ToxiproxyClient, echo_proxy: int) -> None:
    client.add_toxic("echo", "timeout", attributes={"timeout": 150})
    with connect(echo_proxy, timeout=2) as sock:
        start = time.perf_counter()
        with contextlib.suppress(ConnectionResetError):
            assert sock.recv(10) == b""
        assert 0.13 <= time.perf_counter() - start < 1.0


def test_hits_count_what_a_toxic_acted_on(client: ToxiproxyClient, echo_proxy: int) -> None:
    """A test proves its fault fired by the toxic's hits: none without traffic, some with it, none when inactive."""
    client.add_toxic("echo", "latency", name="slow", attributes={"latency": 1})
    client.add_toxic("echo", "latency", name="never", toxicity=0.0, attributes={"latency": 1})
    assert client.toxic("echo", "slow")["hits"] == 0
    with connect(echo_proxy) as sock:
        for _ in range(3):
            roundtrip(sock)
    assert client.toxic("echo", "slow")["hits"] >= 3
    assert client.toxic("echo", "never")["hits"] == 0


def test_limit_connections_keeps_the_oldest_and_resets_the_rest(client: ToxiproxyClient, echo_proxy: int) -> None:
    with connect(echo_proxy) as first, connect(echo_proxy) as second, connect(echo_proxy) as third:
        for sock in (first, second, third):
            roundtrip(sock)  # all three open before the cap
        client.add_toxic("echo", "limit_connections", stream="upstream", name="cap", attributes={"max": 2})
        assert roundtrip(first) < 1 and roundtrip(second) < 1  # the oldest two keep working
        with pytest.raises((ConnectionResetError, BrokenPipeError, ConnectionAbortedError, TimeoutError, OSError)):
            third.sendall(b"ping")
            if not third.recv(10):
                raise ConnectionResetError("closed")
        # A new one beyond the cap is reset at once (whether its connect, its send or its read sees the reset).
        with (
            pytest.raises((ConnectionResetError, BrokenPipeError, TimeoutError, OSError)),
            connect(echo_proxy) as fourth,
        ):
            fourth.sendall(b"ping")
            if not fourth.recv(10):
                raise ConnectionResetError("closed")
        assert client.toxic("echo", "cap")["hits"] == 2
    client.remove_toxic("echo", "cap")
    with connect(echo_proxy) as again:
        assert roundtrip(again) < 1


def test_reset_peer_resets(client: ToxiproxyClient, echo_proxy: int) -> None:
    client.add_toxic("echo", "reset_peer", stream="upstream", attributes={"timeout": 50})
    with connect(echo_proxy, timeout=2) as sock:
        sock.sendall(b"hello")
        with pytest.raises(ConnectionResetError):
            sock.recv(10)


def test_limit_data_closes_after_n_bytes(client: ToxiproxyClient, echo_proxy: int) -> None:
    client.add_toxic("echo", "limit_data", attributes={"bytes": 100})
    with connect(echo_proxy, timeout=2) as sock:
        sock.sendall(b"x" * 1000)
        assert recv_until_eof(sock) == b"x" * 100


def test_slicer_delivers_every_byte(client: ToxiproxyClient, echo_proxy: int) -> None:
    client.add_toxic("echo", "slicer", attributes={"average_size": 64, "size_variation": 32, "delay": 20})
    payload = os.urandom(20_000)
    with connect(echo_proxy, timeout=5) as sock:
        sock.sendall(payload)
        got = bytearray()
        reads = 0
        while len(got) < len(payload):
            got += sock.recv(65536)
            reads += 1
    assert bytes(got) == payload
    assert reads > 5  # arrived in many pieces


def test_slow_close_delays_close(client: ToxiproxyClient, echo_proxy: int) -> None:
    client.add_toxic("echo", "slow_close", attributes={"delay": 200})
    with connect(echo_proxy, timeout=2) as sock:
        roundtrip(sock)
        start = time.perf_counter()
        sock.shutdown(socket.SHUT_WR)
        assert recv_until_eof(sock) == b""
        assert time.perf_counter() - start >= 0.18


def test_toxic_applies_to_new_connections_only_when_active(client: ToxiproxyClient, echo_proxy: int) -> None:
    client.add_toxic("echo", "limit_data", attributes={"bytes": 3})
    with connect(echo_proxy) as sock:
        sock.sendall(b"abcdef")
        assert recv_until_eof(sock) == b"abc"
    client.remove_toxic("echo", "limit_data_downstream")
    with connect(echo_proxy) as sock:
        roundtrip(sock, b"abcdef")


# --- aws_fault with boto3 and moto --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("wb")
    proc = subprocess.Popen([PY, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"moto server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/moto-api/", timeout=1):
                return True
        except OSError:
            return False

    try:
        wait_for(answers, timeout=20, what="moto server")
        yield url
    finally:
        stop_pid(proc)
        log.close()


@pytest.fixture
def dynamo(client: ToxiproxyClient, moto_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], Any]]:
    """Factory of boto3 DynamoDB clients going through a 'dynamo' proxy to moto; a table 'items' exists.

    botocore's throttling backoff (1 s base, doubling) is scaled down so retries stay quick; which errors it
    retries, and how it classifies them, is untouched.
    """
    import boto3
    from botocore.config import Config
    from botocore.retries.standard import ExponentialBackoff

    monkeypatch.setattr(
        ExponentialBackoff,
        "_DEFAULT_BACKOFF_CONFIG",
        {"throttling_base_scale": 0.01, "non_throttling_base_scale": 0.005},
    )

    kwargs: dict[str, Any] = {
        "region_name": "us-east-1",
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }
    direct = boto3.client("dynamodb", endpoint_url=moto_url, **kwargs)
    tables = direct.list_tables()["TableNames"]
    if "items" not in tables:
        direct.create_table(
            TableName="items",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    listen = client.create_proxy("dynamo", "127.0.0.1:0", moto_url.removeprefix("http://"))["listen"]
    config = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=2, read_timeout=5)

    def make() -> Any:
        return boto3.client("dynamodb", endpoint_url=f"http://{listen}", config=config, **kwargs)

    yield make


def put(ddb: Any, key: str) -> dict[str, Any]:
    return ddb.put_item(TableName="items", Item={"pk": {"S": key}, "v": {"N": "1"}})


def test_aws_fault_throttle_count_retries_then_succeeds(client: ToxiproxyClient, dynamo: Callable[[], Any]) -> None:
    ddb = dynamo()
    put(ddb, "warm")  # open the keep-alive connection before the toxic
    client.add_toxic(
        "dynamo",
        "aws_fault",
        stream="upstream",
        name="throttle",
        attributes={"target": "DynamoDB_20120810.PutItem", "action": "throttle", "count": 2},
    )
    response = put(ddb, "k1")
    assert response["ResponseMetadata"]["RetryAttempts"] == 2
    assert client.toxic("dynamo", "throttle")["attributes"]["hits"] == 2
    # Non-matching operations pass through untouched on the same connection.
    assert ddb.get_item(TableName="items", Key={"pk": {"S": "k1"}})["Item"]["v"] == {"N": "1"}


def test_aws_fault_unlimited_throttle_raises(client: ToxiproxyClient, dynamo: Callable[[], Any]) -> None:
    ddb = dynamo()
    client.add_toxic("dynamo", "aws_fault", stream="upstream", attributes={"target": "DynamoDB_20120810.Put*"})
    with pytest.raises(ddb.exceptions.ProvisionedThroughputExceededException) as err:
        put(ddb, "k2")
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    # botocore's retries={"max_attempts": 3} means 3 retries after the first attempt: 4 requests in all.
    assert err.value.response["ResponseMetadata"]["RetryAttempts"] == 3
    assert client.toxic("dynamo", "aws_fault_upstream")["attributes"]["hits"] == 4


@pytest.mark.parametrize(
    ("action", "code", "status"),
    [
        ("throttling", "ThrottlingException", 400),
        ("error500", "InternalServerError", 500),
        ("error503", "ServiceUnavailable", 503),
    ],
)
def test_aws_fault_error_shapes(
    client: ToxiproxyClient, dynamo: Callable[[], Any], action: str, code: str, status: int
) -> None:
    from botocore.exceptions import ClientError

    ddb = dynamo()
    client.add_toxic("dynamo", "aws_fault", stream="upstream", attributes={"action": action})
    with pytest.raises(ClientError) as err:
        ddb.describe_table(TableName="items")
    assert err.value.response["Error"]["Code"] == code
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert err.value.response["ResponseMetadata"]["RetryAttempts"] == 3  # botocore saw it as retryable


def test_aws_fault_drop_and_latency(client: ToxiproxyClient, dynamo: Callable[[], Any]) -> None:
    ddb = dynamo()
    client.add_toxic("dynamo", "aws_fault", stream="upstream", name="drop", attributes={"action": "drop", "count": 1})
    assert put(ddb, "k3")["ResponseMetadata"]["RetryAttempts"] == 1
    client.remove_toxic("dynamo", "drop")
    client.add_toxic(
        "dynamo",
        "aws_fault",
        stream="upstream",
        name="slow",
        attributes={"action": "latency", "latency": 200, "target": "DynamoDB_20120810.GetItem"},
    )
    start = time.perf_counter()
    ddb.get_item(TableName="items", Key={"pk": {"S": "k3"}})
    assert time.perf_counter() - start >= 0.19
    start = time.perf_counter()
    put(ddb, "k4")
    assert time.perf_counter() - start < 0.19


def test_aws_fault_probability_zero_passes(client: ToxiproxyClient, dynamo: Callable[[], Any]) -> None:
    ddb = dynamo()
    client.add_toxic("dynamo", "aws_fault", stream="upstream", attributes={"probability": 0})
    assert put(ddb, "k5")["ResponseMetadata"]["RetryAttempts"] == 0
    assert client.toxics("dynamo")[0]["attributes"]["hits"] == 0


def test_aws_fault_rejects_bad_attributes(client: ToxiproxyClient, dynamo: Callable[[], Any]) -> None:
    with pytest.raises(ToxiproxyError) as err:
        client.add_toxic("dynamo", "aws_fault", stream="upstream", attributes={"action": "explode"})
    assert err.value.status == 400 and "action must be one of" in err.value.message
    with pytest.raises(ToxiproxyError) as err:
        client.add_toxic("dynamo", "aws_fault", stream="downstream")
    assert err.value.status == 400 and "upstream" in err.value.message
