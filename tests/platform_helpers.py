"""Start a real embedded platform for a test, talk to it, and stop all of it afterwards."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import psutil
import requests

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


def wait_for(condition: Callable[[], T], timeout: float = 10.0, interval: float = 0.02, what: str = "") -> T:
    """Poll until ``condition`` returns something truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")
        time.sleep(interval)


def run_testbed(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "testbed", *args], cwd=ROOT, capture_output=True, text=True, timeout=60, check=check
    )


class Platform:
    def __init__(self, state: Path, defects: tuple[str, ...] = (), **settings: Any) -> None:
        self.state = state
        args = ["up", "--state", str(state)]
        for name in defects:
            args += ["--defect", name]
        for key, value in settings.items():
            args += ["--set", f"{key}={value}"]
        started = time.monotonic()
        result = run_testbed(*args, check=False)
        self.startup_seconds = time.monotonic() - started
        assert result.returncode == 0, result.stderr
        self.endpoints: dict[str, Any] = json.loads(result.stdout)
        self.url = self.endpoints["PLATFORM_API_URL"]
        self.http = requests.Session()

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 10)
        return self.http.request(method, f"{self.url}{path}", **kwargs)

    def create(self, user: str = "u1", client: str = "c1") -> dict[str, Any]:
        response = self.call("POST", "/sessions", json={"userId": user, "clientId": client})
        assert response.status_code == 201, response.text
        return response.json()

    def session(self, sid: str) -> dict[str, Any]:
        return self.call("GET", f"/sessions/{sid}").json()

    def wait_status(self, sid: str, status: str, timeout: float = 10.0, **fields: Any) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            body = self.session(sid)
            ok = body.get("status") == status and all(body.get(k) == v for k, v in fields.items())
            return body if ok else None

        return wait_for(reached, timeout, what=f"{sid} to be {status} {fields}")

    def containers(self, sid: str) -> list[psutil.Process]:
        found = []
        for proc in psutil.process_iter(["cmdline"]):
            cmd = " ".join(proc.info.get("cmdline") or [])
            if f"instance={self.endpoints['PLATFORM_INSTANCE']} session={sid} " in cmd:
                found.append(proc)
        return [p for p in found if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]

    def container(self, sid: str) -> psutil.Process:
        procs = wait_for(lambda: self.containers(sid), what=f"a container for {sid}")
        assert len(procs) == 1, f"{len(procs)} containers for {sid}"
        return procs[0]

    def processes(self) -> list[psutil.Process]:
        """Every live process of this platform (the same search ``testbed down`` makes)."""
        from testbed.__main__ import platform_processes

        return platform_processes(self.state.resolve(), self.endpoints["PLATFORM_INSTANCE"])

    def down(self) -> None:
        self.http.close()
        run_testbed("down", "--state", str(self.state))
