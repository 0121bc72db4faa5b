"""Chaos engineering: network, AWS API, resource and time faults, always reverted (issue 4).

The keywords live in one component made of parts: ``chaos_network`` (toxics, AWS API faults, clients, circuit
breaker), ``chaos_resources`` (memory, CPU, EFS), ``chaos_time`` (clock, TTL, idle, scale-in race) and
``chaos_checks`` (judging outcomes); this module holds the safety rules, the ledger keywords, the private platform
and the steady state.

Every fault acts from outside the platform's code on something real: toxics on the fault proxy's hops (``api``,
``dynamodb``, ``mesh-<sessionId>``), processes and control files in the containers' cgroups, the user's workspace
folder, the platform's clock-skew file. Every fault is written into the fault ledger (see ``chaos_ledger``) before
it is applied and crossed out when reverted, so `Revert All Faults`, a suite teardown, or the next run after a
SIGKILL (`Revert Faults Left By An Earlier Run`) can always undo it.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import requests
from robot.api.deco import keyword
from robot.libraries.BuiltIn import BuiltIn, RobotNotRunningError

from . import chaos_ledger
from .aws_safety import ChaosRefused, check_chaos_allowed
from .base import LibraryComponent
from .chaos_checks import ChaosCheckKeywords
from .chaos_clients import RetryingClient
from .chaos_ledger import ChaosError
from .chaos_network import ChaosNetworkKeywords
from .chaos_resources import ChaosResourceKeywords
from .chaos_time import ChaosTimeKeywords
from .platform_api import TERMINAL_STATUSES, SessionRef
from .profile import format_seconds
from .waiting import wait_until


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-").lower() or "suite"


class ChaosKeywords(
    ChaosNetworkKeywords, ChaosResourceKeywords, ChaosTimeKeywords, ChaosCheckKeywords, LibraryComponent
):
    """Chaos engineering: network, AWS API, resource and time faults, always reverted (issue 4).

    Safety rules every keyword of this component follows:
    - nothing is injected unless the profile's chaos guard allows it (``${CHAOS_ALLOWED}``, see
      `Chaos Should Be Allowed`);
    - a fault aimed at a session is refused unless this run created the session;
    - a fault that hits the whole platform (the ``api`` or ``dynamodb`` hop, the clock) is refused unless the
      suite runs on its own private platform (`Start Private Chaos Platform`) or holds the platform exclusively;
    - every fault goes into the fault ledger before it is applied.

    Also a library listener: it notes when each test starts (recovery times never reach back into an earlier
    test) and stops the test's retrying clients when it ends.
    """

    ROBOT_LISTENER_API_VERSION = 3

    def __init__(self, library):
        super().__init__(library)
        library.chaos_keywords = self
        self._test_started = time.monotonic()
        self._private: dict[str, Any] | None = None
        self._injected_at: float | None = None
        self._clients: dict[str, RetryingClient] = {}
        self._pressure: dict[str, dict[str, Any]] = {}
        self._cpu: dict[str, dict[str, Any]] = {}

    # ------------------------------------------------------------------ listener
    def start_test(self, data, result):
        self._test_started = time.monotonic()

    def end_test(self, data, result):
        for client in self._clients.values():
            client.stop()
        self._clients.clear()

    def _since_revert(self) -> float:
        """When the last fault of this test was reverted (now, when none was): recovery times count from there."""
        reverted = chaos_ledger.last_revert()
        return reverted if reverted is not None and reverted >= self._test_started else time.monotonic()

    # ------------------------------------------------------------------ plumbing
    @property
    def ledger(self) -> chaos_ledger.FaultLedger:
        return chaos_ledger.FaultLedger(self.profile.text("FAULT_LEDGER_DIR", str(chaos_ledger.DEFAULT_DIR)))

    @property
    def _http_timeout(self) -> float:
        return self.profile.seconds("HTTP_TIMEOUT")

    def _variable(self, name: str) -> str | None:
        try:
            value = BuiltIn().get_variable_value(f"${{{name}}}")
        except RobotNotRunningError:
            return None
        return None if value is None else str(value)

    def _record(self, kind: str, description: str, undo: list[dict], platform_wide: bool = False) -> dict:
        entry = self.ledger.record(
            kind,
            description,
            undo,
            self.context.run_id,
            suite=self.context.current_suite,
            test=self.context.current_test,
            platform=str(self.library.endpoints.state_dir) if self.profile.is_embedded else None,
        )
        self._injected_at = time.monotonic()
        return entry

    def _activate(self, entry: dict, **changes: Any) -> str:
        self.ledger.update(entry["id"], state="active", **changes)
        self.info(f"Fault {entry['id']} injected: {entry['description']}.")
        return entry["id"]

    def _undo_now(self, entry: dict) -> None:
        """A fault that failed half-way is reverted at once; the original error is what the test sees."""
        try:
            chaos_ledger.revert_entry(self.ledger, entry, self._http_timeout)
        except chaos_ledger.FaultRevertError as error:
            self.info(f"Reverting the half-applied fault failed too: {error}")

    # ------------------------------------------------------------------ guards
    def _allow(self, what: str) -> None:
        """The profile's chaos guard (``${CHAOS_ALLOWED}``, and on AWS the production guard) must allow ``what``."""
        check_chaos_allowed(self.library, what)

    def _guard_session(self, session: SessionRef, what: str = "inject a fault into a session") -> str:
        self._allow(what)
        session_id = self.session_id_of(session)
        if session_id not in self.library.tracker.all_ids():
            raise ChaosRefused(
                f"Session {session_id} was not created by this run; chaos touches only sessions this run created "
                "(Create Session remembers them)."
            )
        return session_id

    def _on_private_platform(self) -> bool:
        return (
            self._private is not None
            and self.profile.is_embedded
            and Path(self._private["state"]) == self.library.endpoints.state_dir
        )

    def _guard_whole_platform(self, what: str) -> None:
        self._allow(f"inject {what[0].lower()}{what[1:]}")
        if self._on_private_platform():
            return
        access = self.library.keywords["acquire_platform_access"].__self__
        if access._lock is not None and access._lock.mode == "exclusive":
            return
        raise ChaosRefused(
            f"{what} hits the whole platform. Run it on a private platform (Start Private Chaos Platform in the "
            "suite setup) or take the platform to yourself first (Acquire Platform Access    exclusive), so "
            "suites running beside this one are not broken."
        )

    def _require_embedded(self, what: str) -> None:
        if not self.profile.is_embedded:
            raise ChaosError(
                f"'{what}' needs the embedded platform (it acts on local processes, cgroups and files); profile "
                f"'{self.profile.text('PROFILE')}' targets {self.profile.target}."
            )

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
        ledger = self.ledger
        entries = ledger.abandoned()
        if not entries:
            self.info(f"No fault left by an earlier run in {ledger.file}.")
            return []
        done, problems = chaos_ledger.revert_entries(ledger, entries, self._http_timeout)
        self.info(f"Reverted {len(done)} fault(s) left by an earlier run:\n" + "\n".join(f"- {d}" for d in done))
        if problems:
            raise ChaosError("Faults left by an earlier run could not all be reverted:\n" + "\n".join(problems))
        return done

    def revert_own_faults(self, include_platforms: bool = False) -> tuple[list[str], list[str]]:
        """Used by `Revert All Faults`: undo this process's ledger entries (its private platform only on request)."""
        ledger = self.ledger
        mine = [e for e in ledger.mine() if include_platforms or e.get("kind") != "private-platform"]
        if not mine:
            return [], []
        return chaos_ledger.revert_entries(ledger, mine, self._http_timeout)

    @keyword(tags=["chaos", "cleanup"])
    def revert_fault(self, fault: str) -> None:
        """Reverts one fault by the id an inject keyword returned; a fault already reverted is fine.

        Example:
        | ${fault} = | Inject AWS Fault | throttle | target=PutItem |
        | Revert Fault | ${fault} |
        """
        entry = self.ledger.get(str(fault))
        if entry is None:
            self.info(f"Fault {fault} is not in the ledger (already reverted).")
            chaos_ledger.mark_revert()
            return
        done = chaos_ledger.revert_entry(self.ledger, entry, self._http_timeout)
        self.info(f"Reverted fault {fault}: " + "; ".join(done))

    @keyword(tags=["chaos"])
    def get_active_faults(self) -> list[dict]:
        """Returns the ledger entries of this test process (faults not reverted yet, and its private platform)."""
        return self.ledger.mine()

    # ------------------------------------------------------------------ private platform
    @keyword(tags=["chaos", "platform"])
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
        self._allow("start a private chaos platform")
        self._require_embedded("Start Private Chaos Platform")
        source = self._variable("SUITE SOURCE") or self._variable("SUITE NAME") or "suite"
        root = Path(self.profile.text("CHAOS_STATE_ROOT", str(chaos_ledger.PROJECT_ROOT / "results" / "chaos")))
        state = (root.expanduser() / _slug(Path(source).stem)).resolve()
        lock = self._lock_state(state)
        if lock is None:
            busy, state = state, state.with_name(f"{state.name}-{self.context.run_id}-{os.getpid()}")
            self.info(f"{busy} is in use by a run that is still going; this run uses {state}.")
            lock = self._lock_state(state)
        entry = self._record(
            "private-platform", f"private chaos platform at {state}", [{"do": "platform-down", "state": str(state)}]
        )
        try:
            chaos_ledger.undo_step({"do": "platform-down", "state": str(state)})  # leftovers of a killed run
            BuiltIn().set_suite_variable("${PLATFORM_STATE_DIR}", str(state))
            self.library.endpoints.forget()
            endpoints = self.library.keywords["start_embedded_platform"](*options)
        except BaseException:
            self._undo_now(entry)
            if lock is not None:
                os.close(lock)
            raise
        self._private = {"state": str(state), "fault": entry["id"], "lock": lock}
        self.ledger.update(entry["id"], state="active", platform=str(state))
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

        Every step is tried even when an earlier one fails; the failures are reported together.
        """
        problems = self.revert_own_faults()[1]
        for client in self._clients.values():
            client.stop()
        self._clients.clear()
        if self._private is None:
            self.info("No private chaos platform to stop.")
        else:
            entry = self.ledger.get(self._private["fault"])
            try:
                if entry is not None:
                    done = chaos_ledger.revert_entry(self.ledger, entry, self._http_timeout)
                    self.info("; ".join(done))
                (Path(self._private["state"]) / "started-by-suite.json").unlink(missing_ok=True)
            except chaos_ledger.FaultRevertError as error:
                problems.append(str(error))
            if self._private.get("lock") is not None:
                os.close(self._private["lock"])
            self._private = None
            self.library.endpoints.forget()
        if problems:
            raise ChaosError("The chaos suite did not end cleanly:\n" + "\n".join(problems))

    @keyword(tags=["chaos", "platform"])
    def get_embedded_platform_setting(self, name: str) -> Any:
        """Returns a setting of the running embedded platform (``<STATE_DIR>/settings.json``), e.g. ``idle_timeout``.

        Example:
        | ${idle} = | Get Embedded Platform Setting | idle_timeout |
        """
        self._require_embedded("Get Embedded Platform Setting")
        path = self.library.endpoints.state_dir / "settings.json"
        try:
            settings = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise ChaosError(f"Cannot read the platform settings {path}: {error}") from None
        if name not in settings:
            raise ChaosError(f"The platform has no setting '{name}'; known: {', '.join(sorted(settings))}.")
        return settings[name]

    # ------------------------------------------------------------------ steady state
    def _steady_problems(self, running: list[str]) -> list[str]:
        problems: list[str] = []
        api = self.library.api
        try:
            health = api.request("GET", "/health", timeout=self._http_timeout)
        except requests.RequestException as error:
            return [f"GET /health got no answer: {error}"]
        body = health.body if isinstance(health.body, dict) else {}
        if health.status != 200 or body.get("status") != "ok":
            problems.append(f"health: {health.describe()}")
        elif body.get("storeCircuit") not in (None, "closed", "none"):
            problems.append(f"health: the store circuit is {body.get('storeCircuit')}")
        left = [e for e in self.ledger.mine() if e.get("kind") != "private-platform"]
        if left:
            problems.append("faults still active: " + "; ".join(f"{e['id']} {e['description']}" for e in left))
        if self._on_private_platform():
            problems += self._proxy_problems()
        sessions = list(dict.fromkeys([*self.library.tracker.ids(self.context.scope), *running]))
        backend = self.library.container_keywords.backend
        for session_id in sessions:
            status = self.library.container_keywords._api_status(session_id)
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
            orphans = self.library.container_keywords._orphans()
        except Exception as error:  # the API gave no usable answer about a container
            problems.append(f"orphan check: {error}")
        else:
            problems += [f"orphaned container pid {o['pid']} of session {o['sessionId']}" for o in orphans]
        return problems

    def _proxy_problems(self) -> list[str]:
        try:
            response = requests.get(f"{str(self.endpoint('FAULT_PROXY_URL')).rstrip('/')}/proxies", timeout=5)
            hops = response.json()
        except (requests.RequestException, ValueError) as error:
            return [f"fault proxy: {error}"]
        problems = []
        for name, hop in sorted(hops.items()):
            if not hop.get("enabled", True):
                problems.append(f"hop {name} is disabled")
            toxics = hop.get("toxics") or []
            if toxics:
                problems.append(f"hop {name} has toxics {[t.get('name') for t in toxics]}")
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
        since = self._since_revert()
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
