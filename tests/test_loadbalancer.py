"""The embedded platform's load balancer behaves as an ALB where the suite can tell (testbed/loadbalancer.py)."""

from __future__ import annotations

import contextlib
import http.server
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.local_http import serve
from tests.platform_helpers import wait_for

ROOT = Path(__file__).resolve().parents[1]


def target(name: str, health: int = 200, delay: float = 0.0) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            return

        def do_GET(self) -> None:
            status = health if self.path == "/health" else 200
            if self.path != "/health":
                time.sleep(delay)
            body = json.dumps({"target": name}).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Balancer:
    def __init__(self, tmp: Path, targets: list[dict], *extra: str) -> None:
        ready = tmp / f"lb-{id(self)}.json"
        self.proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "testbed.loadbalancer", "--ready-file", str(ready)),
                *("--targets", json.dumps(targets), "--health-interval", "0.1", "--health-timeout", "0.2", *extra),
            ],
            cwd=ROOT,
            stderr=subprocess.DEVNULL,
        )
        found = wait_for(lambda: json.loads(ready.read_text()) if ready.exists() else None, what="the balancer")
        self.url = f"http://127.0.0.1:{found['port']}"
        self.admin = f"http://127.0.0.1:{found['admin_port']}"

    def states(self) -> dict[str, str]:
        return {t["id"]: t["state"] for t in requests.get(f"{self.admin}/targets", timeout=5).json()["targets"]}

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture
def balancer(tmp_path: Path) -> Iterator:
    made: list[Balancer] = []

    def make(targets: list[dict], *extra: str) -> Balancer:
        made.append(Balancer(tmp_path, targets, *extra))
        return made[-1]

    yield make
    for each in made:
        each.stop()


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


@contextlib.contextmanager
def targets(*handlers: type[http.server.BaseHTTPRequestHandler]) -> Iterator[list[dict]]:
    with contextlib.ExitStack() as stack:
        urls = [stack.enter_context(contextlib.contextmanager(serve)(h)) for h in handlers]
        yield [{"id": f"t{i}", "port": port_of(u)} for i, u in enumerate(urls)]


def test_only_healthy_targets_take_traffic(balancer) -> None:
    with targets(target("good"), target("sick", health=503)) as registered:
        lb = balancer(registered)
        wait_for(lambda: lb.states() == {"t0": "healthy", "t1": "unhealthy"}, what="health states")
        answers = {requests.get(f"{lb.url}/x", timeout=5).json()["target"] for _ in range(6)}
        assert answers == {"good"}


def test_no_healthy_target_fails_open(balancer) -> None:
    with targets(target("a", health=503), target("b", health=503)) as registered:
        lb = balancer(registered)
        wait_for(lambda: set(lb.states().values()) == {"unhealthy"}, what="both unhealthy")
        answers = {requests.get(f"{lb.url}/x", timeout=5).json()["target"] for _ in range(4)}
        assert answers == {"a", "b"}


def test_error_answers_name_the_cause(balancer) -> None:
    with targets(target("slow", delay=1.0)) as registered:
        lb = balancer([*registered], "--target-timeout", "0.3")
        answer = requests.get(f"{lb.url}/x", timeout=5)
        assert answer.status_code == 504 and answer.json()["error"] == "gateway_timeout"
    lb = balancer([{"id": "gone", "port": free_port()}])
    answer = requests.get(f"{lb.url}/x", timeout=5)
    assert answer.status_code == 502 and answer.json()["error"] == "bad_gateway"
    empty = balancer([])
    answer = requests.get(f"{empty.url}/x", timeout=5)
    assert answer.status_code == 503 and answer.json()["error"] == "no_targets"


def test_registration_and_bad_input(balancer) -> None:
    with targets(target("a"), target("b")) as registered:
        lb = balancer(registered[:1])
        answer = requests.put(f"{lb.admin}/targets", json={"targets": registered[1:]}, timeout=5)
        assert [t["id"] for t in answer.json()["targets"]] == ["t1"]
        wait_for(lambda: lb.states() == {"t1": "healthy"}, what="the new target healthy")
        assert requests.get(f"{lb.url}/x", timeout=5).json()["target"] == "b"
        bad = requests.put(f"{lb.admin}/targets", data=b"not json", timeout=5)
        assert bad.status_code == 400 and bad.json()["error"] == "bad_request"
        chunked = requests.post(f"{lb.url}/x", data=iter([b"a"]), timeout=5)
        assert chunked.status_code == 400 and "Content-Length" in chunked.json()["message"]


def test_a_new_target_waits_for_its_health_checks(balancer) -> None:
    """A target registered later takes traffic only after passing its checks, while the others are healthy."""
    with targets(target("old")) as first, targets(target("new")) as second:
        lb = balancer(first)
        wait_for(lambda: lb.states() == {"t0": "healthy"}, what="the first target healthy")
        both = [first[0], {"id": "t9", "port": second[0]["port"]}]
        requests.put(f"{lb.admin}/targets", json={"targets": both}, timeout=5)
        seen = requests.get(f"{lb.url}/x", timeout=5).json()["target"]
        assert seen == "old", "a target still in 'initial' took traffic"
        wait_for(lambda: lb.states().get("t9") == "healthy", what="the new target healthy")


def test_a_draining_target_takes_no_new_request_and_says_so(balancer) -> None:
    """Registered with draining (ECS deregisters a task it stops): out of rotation at once, health checks or not."""
    with targets(target("staying"), target("leaving")) as registered:
        lb = balancer(registered)
        wait_for(lambda: set(lb.states().values()) == {"healthy"}, what="both healthy")
        drained = [registered[0], {**registered[1], "draining": True}]
        requests.put(f"{lb.admin}/targets", json={"targets": drained}, timeout=5)
        view = {t["id"]: t for t in requests.get(f"{lb.admin}/targets", timeout=5).json()["targets"]}
        assert (view["t1"]["state"], view["t1"]["reason"]) == ("draining", "Target.DeregistrationInProgress")
        answers = {requests.get(f"{lb.url}/x", timeout=5).json()["target"] for _ in range(6)}
        assert answers == {"staying"}
        time.sleep(0.4)  # health checks go on for the others, never bring a draining target back
        assert lb.states() == {"t0": "healthy", "t1": "draining"}


def test_a_black_holed_target_fails_its_health_checks_and_comes_back_when_freed(balancer) -> None:
    with targets(target("held"), target("free")) as registered:
        lb = balancer(registered)
        wait_for(lambda: set(lb.states().values()) == {"healthy"}, what="both healthy")
        held = requests.put(f"{lb.admin}/targets/t0/blackhole", json={"on": True}, timeout=5).json()
        assert held["blackholed"] is True
        wait_for(lambda: lb.states()["t0"] == "unhealthy", what="the black-holed target unhealthy")
        reason = {t["id"]: t for t in requests.get(f"{lb.admin}/targets", timeout=5).json()["targets"]}["t0"]
        assert reason["reason"] == "Target.Timeout" and reason["held"] > 0
        answers = {requests.get(f"{lb.url}/x", timeout=5).json()["target"] for _ in range(4)}
        assert answers == {"free"}
        requests.put(f"{lb.admin}/targets/t0/blackhole", json={"on": False}, timeout=5)
        wait_for(lambda: lb.states()["t0"] == "healthy", what="the freed target healthy again")
        missing = requests.put(f"{lb.admin}/targets/nope/blackhole", json={"on": True}, timeout=5)
        assert missing.status_code == 404


def test_without_health_checks_a_black_holed_target_keeps_taking_requests(balancer) -> None:
    """The defect lb-no-health-check: requests still go to the held target and time out (504)."""
    with targets(target("held"), target("free")) as registered:
        lb = balancer(registered, "--no-health", "--target-timeout", "0.3")
        requests.put(f"{lb.admin}/targets/t0/blackhole", json={"on": True}, timeout=5)
        statuses = [requests.get(f"{lb.url}/x", timeout=5).status_code for _ in range(4)]
        assert 504 in statuses and 200 in statuses
