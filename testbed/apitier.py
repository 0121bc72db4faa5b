"""The API tier: API targets behind the load balancer, kept running as an ECS service and its ALB would be.

The platform's main loop calls :meth:`ApiTier.supervise` twice a second: a target process that exited is replaced
by a new one (a new task: new id, new port) and the load balancer's registrations are updated (as ECS deregisters a
stopped task and registers its replacement); a load balancer that exited is started again on the same ports (the
ALB's DNS name does not change when AWS replaces a node). ``run/api-tier.json`` says which processes are which.
"""

from __future__ import annotations

import json
import logging
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from testbed.config import Settings

log = logging.getLogger("testbed.apitier")
Spawn = Callable[..., subprocess.Popen[bytes]]
WaitReady = Callable[[Path, subprocess.Popen[bytes], float], dict[str, Any]]


class ApiTier:
    def __init__(self, settings: Settings, run_dir: Path, spawn: Spawn, wait_ready: WaitReady, core_port: int) -> None:
        self.settings = settings
        self.run_dir = run_dir
        self.spawn = spawn
        self.wait_ready = wait_ready
        self.core_port = core_port
        self.targets: dict[str, tuple[subprocess.Popen[bytes], int]] = {}  # id -> (process, port)
        self.balancer: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.admin_port = 0
        self._serial = 0
        self.replaced: list[dict[str, Any]] = []  # what supervision did: the suite reads it to time recoveries

    # ----- start ------------------------------------------------------------------------------------------
    def start(self) -> None:
        for _ in range(self.settings.api_targets):
            self._start_target()
        self._start_balancer()

    def _start_target(self) -> str:
        self._serial += 1
        ident = f"api-{self._serial}"
        ready = self.run_dir / f"{ident}.json"
        proc = self.spawn("-m", "testbed.apitarget", "--upstream", str(self.core_port), "--ready-file", str(ready))
        port = self.wait_ready(ready, proc, time.monotonic() + 15)["port"]
        self.targets[ident] = (proc, port)
        return ident

    def _registrations(self) -> list[dict[str, Any]]:
        return [{"id": ident, "port": port, "pid": proc.pid} for ident, (proc, port) in self.targets.items()]

    def _start_balancer(self) -> None:
        ready = self.run_dir / "loadbalancer.json"
        ready.unlink(missing_ok=True)
        s = self.settings
        args = [
            "-m",
            "testbed.loadbalancer",
            "--port",
            str(self.port),
            "--admin-port",
            str(self.admin_port),
            "--ready-file",
            str(ready),
            "--targets",
            json.dumps(self._registrations()),
            "--health-interval",
            str(s.lb_health_interval),
            "--health-timeout",
            str(s.lb_health_timeout),
            "--healthy-threshold",
            str(s.lb_healthy_threshold),
            "--unhealthy-threshold",
            str(s.lb_unhealthy_threshold),
            "--target-timeout",
            str(s.lb_target_timeout),
        ]
        if s.has("lb-no-health-check"):
            args.append("--no-health")
        self.balancer = self.spawn(*args)
        found = self.wait_ready(ready, self.balancer, time.monotonic() + 15)
        self.port, self.admin_port = found["port"], found["admin_port"]
        self._write_state()

    def _write_state(self) -> None:
        state = {
            "loadBalancer": {"pid": self.balancer.pid if self.balancer else None, "port": self.port},
            "targets": self._registrations(),
            "replaced": self.replaced[-50:],
        }
        tmp = self.run_dir / "api-tier.tmp"
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.run_dir / "api-tier.json")

    # ----- supervise --------------------------------------------------------------------------------------
    def supervise(self) -> None:
        """Replace what died; never raises (a failed replacement is logged and tried again next time)."""
        try:
            self._supervise()
        except Exception:
            log.exception("API tier supervision failed; trying again")

    def _supervise(self) -> None:
        changed = False
        for ident, (proc, _) in list(self.targets.items()):
            if proc.poll() is None:
                continue
            if self.settings.has("api-target-not-replaced"):
                continue  # the defect: the dead target stays registered and is never replaced
            del self.targets[ident]
            new = self._start_target()
            log.warning("API target %s exited with %s; replaced by %s", ident, proc.returncode, new)
            self.replaced.append({"kind": "api-target", "old": ident, "new": new, "time": time.time()})
            changed = True
        lb_died = self.balancer is not None and self.balancer.poll() is not None
        if lb_died and not self.settings.has("lb-not-restarted"):  # the defect leaves it dead
            code = self.balancer.returncode if self.balancer else None
            self.replaced.append({"kind": "load-balancer", "time": time.time()})
            self._start_balancer()  # with the current registrations, on the same ports; writes the state
            log.warning("load balancer exited with %s; started again on port %s", code, self.port)
            changed = False
        if changed and self.balancer is not None and self.balancer.poll() is None:
            self._register()
            self._write_state()

    def _register(self) -> None:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.admin_port}/targets",
            data=json.dumps({"targets": self._registrations()}).encode(),
            method="PUT",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=2) as response:
            response.read()
