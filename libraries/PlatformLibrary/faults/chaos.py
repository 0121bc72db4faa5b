"""Chaos engineering: the private chaos platform, the steady state, and reverting faults (always).

The fault keywords live in components of their own, each given what it uses: ``faults/network.py`` (toxics, AWS
API faults, clients, circuit breaker), ``faults/resources.py`` (memory, CPU, disk, EFS, the container control
plane), ``faults/clock.py`` (clock, TTL, idle, scale-in race), ``faults/balancer.py`` (API targets, the load
balancer) and ``faults/checks.py`` (judging outcomes). The safety rules and the bookkeeping all of them go through
are the ``FaultInjector`` (``faults/injector.py``); this module holds the ledger keywords, the private platform and
the steady state.

Every fault acts from outside the platform's code on something real: toxics on the fault proxy's hops (``api``,
``dynamodb``, ``mesh-<sessionId>``), processes and control files in the containers' cgroups, the user's workspace
folder, the platform's clock-skew file. Every fault is written into the fault ledger (``faults/ledger.py``) before
it is applied and crossed out when reverted, so `Revert All Faults`, a suite teardown, or the next run after a
SIGKILL (`Revert Faults Left By An Earlier Run`) can always undo it.
"""

from __future__ import annotations

import fcntl
import os
import re
import time
from datetime import timedelta
from pathlib import Path

import requests
from robot.api.deco import keyword
from robot.libraries.BuiltIn import BuiltIn, RobotNotRunningError

from ..core.base import LibraryComponent, LibraryContext
from ..core.profile import format_seconds
from ..core.waiting import wait_until
from ..sessions.api import TERMINAL_STATUSES, SessionRef
from ..targets.containers import ContainerKeywords
from ..targets.embedded.keywords import EmbeddedPlatformKeywords
from . import ledger as chaos_ledger
from .injector import FaultInjector
from .ledger import ChaosError
from .toxiproxy import ToxiproxyClient

__all__ = ["ChaosError", "ChaosKeywords"]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-").lower() or "suite"


class ChaosKeywords(LibraryComponent):
    """Chaos engineering: the fault ledger, the private chaos platform and the steady state.

    Safety rules every chaos keyword follows (the ``FaultInjector`` enforces them):
    - nothing is injected unless the profile's chaos guard allows it (``${CHAOS_ALLOWED}``, see
      `Chaos Should Be Allowed`);
    - a fault aimed at a session is refused unless this run created the session;
    - a fault that hits the whole platform (the ``api`` or ``dynamodb`` hop, the clock) is refused unless the
      suite runs on its own private platform (`Start Private Chaos Platform`) or holds the platform exclusively;
    - every fault goes into the fault ledger before it is applied.
    """

    def __init__(
        self,
        ctx: LibraryContext,
        injector: FaultInjector,
        embedded: EmbeddedPlatformKeywords,
        containers: ContainerKeywords,
    ):
        super().__init__(ctx)
        self.injector = injector
        self.embedded = embedded
        self.containers = containers

    def _variable(self, name: str) -> str | None:
        try:
            value = BuiltIn().get_variable_value(f"${{{name}}}")
        except RobotNotRunningError:
            return None
        return None if value is None else str(value)

    # ------------------------------------------------------------------ ledger keywords
    @keyword(tags=["chaos", "safety", "cleanup"])
    def revert_faults_left_by_an_earlier_run(self) -> list[str]:
        """Reverts every fault in the ledger whose test process is gone, and returns what was done.

        A run killed with SIGKILL cannot clean up; its faults stay in the ledger with its pid. This keyword (in the
        suite setup of every chaos suite) removes their toxics, restores cgroup values and the clock, kills helper
        processes, moves workspaces back and stops private platforms such a run left running. Faults of test
        processes that are still alive (pabot workers beside this one) are left alone. Fails, after trying every
        fault, when one could not be reverted.

        Example:
        | Revert Faults Left By An Earlier Run |
        """
        ledger = self.injector.ledger
        entries = ledger.abandoned()
        if not entries:
            self.info(f"No fault left by an earlier run in {ledger.file}.")
            return []
        done, problems = chaos_ledger.revert_entries(ledger, entries, self.http_timeout)
        self.info(f"Reverted {len(done)} fault(s) left by an earlier run:\n" + "\n".join(f"- {d}" for d in done))
        if problems:
            raise ChaosError("Faults left by an earlier run could not all be reverted:\n" + "\n".join(problems))
        return done

    @keyword(tags=["chaos", "cleanup"])
    def revert_fault(self, fault: str) -> None:
        """Reverts one fault by the id an inject keyword returned; a fault already reverted is fine.

        Example:
        | ${fault} = | Inject AWS Fault | throttle | target=PutItem |
        | Revert Fault | ${fault} |
        """
        entry = self.injector.ledger.get(str(fault))
        if entry is None:
            self.info(f"Fault {fault} is not in the ledger (already reverted).")
            chaos_ledger.mark_revert()
            return
        done = chaos_ledger.revert_entry(self.injector.ledger, entry, self.http_timeout)
        self.info(f"Reverted fault {fault}: " + "; ".join(done))

    # ------------------------------------------------------------------ private platform
    @keyword(tags=["embedded-only", "chaos", "platform"])
    def start_private_chaos_platform(self, *options: str) -> dict:
        """Starts an embedded platform that only this suite uses, and points every keyword of the suite at it.

        The state folder is ``<CHAOS_STATE_ROOT>/<suite file name>`` (default ``results/chaos/<name>``); faults
        that hit the whole platform then never touch suites running beside this one under pabot. ``options`` go
        to ``python -m testbed up`` (e.g. ``--set    idle_timeout=600``); defects named in the environment
        variable ``TESTBED_DEFECTS`` are switched on by the testbed itself. A platform left in that folder by an
        earlier, killed run is stopped first. The folder is locked (``flock``) while the suite uses it; when a
        run that is still going holds it, this run takes ``<name>-<run id>-<pid>`` beside it. The platform is in
        the fault ledger, so a killed run's platform is stopped by the next run wherever it was. Returns the
        endpoints.

        Example:
        | Start Private Chaos Platform |
        | Start Private Chaos Platform | --set | idle_timeout=600 |
        """
        self.injector.allow("start a private chaos platform")
        source = self._variable("SUITE SOURCE") or self._variable("SUITE NAME") or "suite"
        root = Path(self.profile.text("CHAOS_STATE_ROOT", str(chaos_ledger.PROJECT_ROOT / "results" / "chaos")))
        state = (root.expanduser() / _slug(Path(source).stem)).resolve()
        lock = self._lock_state(state)
        if lock is None:
            busy, state = state, state.with_name(f"{state.name}-{self.context.run_id}-{os.getpid()}")
            self.info(f"{busy} is in use by a run that is still going; this run uses {state}.")
            lock = self._lock_state(state)
        entry = self.injector.record(
            "private-platform", f"private chaos platform at {state}", [{"do": "platform-down", "state": str(state)}]
        )
        try:
            chaos_ledger.undo_step({"do": "platform-down", "state": str(state)})  # leftovers of a killed run
            BuiltIn().set_suite_variable("${PLATFORM_STATE_DIR}", str(state))
            self.ctx.endpoints.forget()
            endpoints = self.embedded.start_embedded_platform(*options)
        except BaseException:
            self.injector.undo_now(entry)
            if lock is not None:
                os.close(lock)
            raise
        self.injector.private_platform = {"state": str(state), "fault": entry["id"], "lock": lock}
        self.injector.ledger.update(entry["id"], state="active", platform=str(state))
        self.info(
            f"Private chaos platform {endpoints.get('PLATFORM_INSTANCE')} at {state}; defects: "
            f"{', '.join(endpoints.get('DEFECTS') or []) or 'none'}; container limits: "
            f"{endpoints.get('CONTAINER_LIMITS')}."
        )
        return endpoints

    @staticmethod
    def _lock_state(state: Path) -> int | None:
        """Hold ``flock`` on ``<state>.lock`` for as long as this process uses the folder (the kernel drops it when
        the process dies, even by SIGKILL); ``None`` when a live process holds it."""
        state.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(state.with_name(f".{state.name}.lock"), os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return fd

    @keyword(tags=["chaos", "platform", "cleanup"])
    def stop_private_chaos_platform(self) -> None:
        """Reverts this process's faults, then stops the suite's private platform; use it in the suite teardown.

        (Retrying API clients never outlive their test: `Start Retrying API Client` stops them when it ends.)

        Every step is tried even when an earlier one fails; the failures are reported together.
        """
        problems = self.injector.revert_own_faults()[1]
        if self.injector.private_platform is None:
            self.info("No private chaos platform to stop.")
        else:
            entry = self.injector.ledger.get(self.injector.private_platform["fault"])
            try:
                if entry is not None:
                    done = chaos_ledger.revert_entry(self.injector.ledger, entry, self.http_timeout)
                    self.info("; ".join(done))
                (Path(self.injector.private_platform["state"]) / "started-by-suite.json").unlink(missing_ok=True)
            except chaos_ledger.FaultRevertError as error:
                problems.append(str(error))
            if self.injector.private_platform.get("lock") is not None:
                os.close(self.injector.private_platform["lock"])
            self.injector.private_platform = None
            self.ctx.endpoints.forget()
        if problems:
            raise ChaosError("The chaos suite did not end cleanly:\n" + "\n".join(problems))

    # ------------------------------------------------------------------ steady state
    def _steady_problems(self, running: list[str]) -> list[str]:
        problems: list[str] = []
        api = self.ctx.api
        try:
            health = api.request("GET", "/health", timeout=self.http_timeout)
        except requests.RequestException as error:
            return [f"GET /health got no answer: {error}"]
        body = health.body if isinstance(health.body, dict) else {}
        if health.status != 200 or body.get("status") != "ok":
            problems.append(f"health: {health.describe()}")
        elif body.get("storeCircuit") not in (None, "closed", "none"):
            problems.append(f"health: the store circuit is {body.get('storeCircuit')}")
        left = [e for e in self.injector.ledger.mine() if e.get("kind") != "private-platform"]
        if left:
            problems.append("faults still active: " + "; ".join(f"{e['id']} {e['description']}" for e in left))
        if self.injector.on_private_platform():
            problems += ToxiproxyClient(self.endpoint("FAULT_PROXY_URL"), 5).problems()
        sessions = list(dict.fromkeys([*self.ctx.tracker.ids(self.context.scope), *running]))
        backend = self.containers.backend
        for session_id in sessions:
            status = self.containers.api_status(session_id)
            containers = backend.containers_of(session_id)
            if session_id in running and status != "RUNNING":
                problems.append(f"session {session_id} is {status}, expected RUNNING")
            elif status == "RUNNING" and len(containers) != 1:
                problems.append(f"session {session_id} is RUNNING with {len(containers)} containers")
            elif status in (*TERMINAL_STATUSES, "GONE") and containers:
                problems.append(f"session {session_id} is {status} but {len(containers)} container(s) still run")
            elif status not in ("RUNNING", "GONE", *TERMINAL_STATUSES):
                problems.append(f"session {session_id} is {status} (not settled)")
        try:
            orphans = self.containers.orphans()
        except Exception as error:  # the API gave no usable answer about a container
            problems.append(f"orphan check: {error}")
        else:
            problems += [f"orphaned container pid {o['pid']} of session {o['sessionId']}" for o in orphans]
        return problems

    @keyword(tags=["chaos", "steady-state", "assertion"])
    def steady_state_should_hold(self, *sessions: SessionRef) -> None:
        """Fails unless the platform is in its steady state right now, listing everything that is off.

        Steady state: ``GET /health`` answers 200 ``ok`` with the store circuit closed; this process has no
        fault left in the ledger; on a private platform no hop of the fault proxy is disabled or has a toxic;
        every session of the current test is settled with matching containers (``RUNNING`` with one, or not live
        with none) and each of ``sessions`` is ``RUNNING``; no container of the platform is orphaned.

        Example:
        | Steady State Should Hold | ${session} |
        """
        problems = self._steady_problems([self.session_id_of(s) for s in sessions])
        if problems:
            raise AssertionError("The platform is not in its steady state:\n" + "\n".join(f"- {p}" for p in problems))
        self.info("Steady state holds.")

    @keyword(tags=["chaos", "steady-state", "wait"])
    def wait_until_steady_state_is_restored(self, *sessions: SessionRef, timeout: timedelta | None = None) -> float:
        """Waits until `Steady State Should Hold` passes and returns the recovery time in seconds.

        The recovery time counts from the last fault the test reverted (or from now when it reverted none), so
        it says how long the platform took to be whole again after the fault ended. The deadline is ``timeout``
        or ``${RECOVERY_TIMEOUT}``; at the deadline the keyword fails listing what is still off.

        Example:
        | ${seconds} = | Wait Until Steady State Is Restored | ${session} |
        | Record Metric | chaos_recovery_time | ${seconds} |
        """
        running = [self.session_id_of(s) for s in sessions]
        since = self.injector.since_revert()
        last: dict[str, list[str]] = {"problems": []}

        def probe():
            last["problems"] = self._steady_problems(running)
            return True if not last["problems"] else None

        deadline = timeout.total_seconds() if timeout is not None else self.profile.seconds("RECOVERY_TIMEOUT")
        wait_until(
            probe,
            deadline,
            self.profile.seconds("POLL_INTERVAL"),
            lambda: (
                "The platform did not return to its steady state:\n" + "\n".join(f"- {p}" for p in last["problems"])
            ),
        )
        seconds = time.monotonic() - since
        self.info(f"Steady state restored {format_seconds(seconds)} after the last fault was reverted.")
        return seconds
