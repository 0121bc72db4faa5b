"""Chaos keywords for time faults (clock skew, TTL and idle boundaries) and the auto-scaling race."""

from __future__ import annotations

import contextlib
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import psutil
import requests
from robot.api.deco import keyword

from ..core.base import LibraryComponent, LibraryContext
from ..core.profile import format_seconds
from ..core.waiting import wait_until
from ..sessions.api import PlatformApiKeywords, SessionRef
from ..sessions.concurrency import ConcurrentCreateResult
from ..targets.embedded import faults as local_faults
from ..targets.embedded.keywords import EmbeddedPlatformKeywords
from .injector import FaultInjector
from .ledger import ChaosError


class ChaosTimeKeywords(LibraryComponent):
    """Time faults (the platform's clock, TTL, idle timeout) and the scale-in race."""

    def __init__(
        self,
        ctx: LibraryContext,
        injector: FaultInjector,
        api: PlatformApiKeywords,
        embedded: EmbeddedPlatformKeywords,
    ):
        super().__init__(ctx)
        self.injector = injector
        self.api = api
        self.embedded = embedded

    # ------------------------------------------------------------------ time faults
    def _skew_file(self) -> Path:
        return Path(str(self.endpoint("CLOCK_SKEW_FILE")))

    @keyword(tags=["embedded-only", "chaos", "time"])
    def get_platform_clock(self) -> float:
        """Returns the platform's wall clock (epoch seconds) as it believes it: this host's clock plus the skew."""
        return time.time() + self._current_skew()

    def _current_skew(self) -> float:
        text = local_faults.read_optional(self._skew_file())
        try:
            return float((text or "0").strip() or 0)
        except ValueError:
            return 0.0

    @keyword(tags=["embedded-only", "chaos", "time"])
    def skew_platform_clock(self, offset: timedelta) -> str:
        """Moves the clock of the platform and of all its containers by ``offset`` (negative: back); returns the
        fault id. Timers and timeouts of the platform use a monotonic clock and are not affected, as on a real host.

        Calls in one test replace each other's offset; revert puts the file back as it was before the first.

        Example:
        | ${fault} = | Skew Platform Clock | 5 min |
        | ${fault} = | Skew Platform Clock | -5 min |
        """
        self.injector.guard_whole_platform("Clock skew")
        fault = self._write_skew(self._skew_file(), offset, "platform clock")
        self.info(f"Platform time is now {self.get_platform_clock():.3f}.")
        return fault

    @keyword(tags=["embedded-only", "chaos", "time"])
    def skew_container_clocks(self, offset: timedelta) -> str:
        """Moves the clock of every container of the platform by ``offset`` against the platform's own (which
        stays as it is); returns the fault id. A container's clock is the platform host's plus this offset.

        The platform must decide idleness, expiry and timestamps on its own clock: a container running ahead or
        behind changes none of them. Calls in one test replace each other's offset.

        Example:
        | ${fault} = | Skew Container Clocks | 15 min |
        """
        self.injector.guard_whole_platform("Clock skew of the containers")
        return self._write_skew(Path(str(self.endpoint("CONTAINER_CLOCK_SKEW_FILE"))), offset, "container clocks")

    @keyword(tags=["embedded-only", "chaos", "time"])
    def get_container_clock(self, session: SessionRef) -> float:
        """What time the session's container believes it is (epoch seconds, from its own ``/health``): proof that a
        container clock skew took effect inside the container."""
        session_id = self.session_id_of(session)
        instance = str(self.endpoint("PLATFORM_INSTANCE"))
        for proc in psutil.process_iter(["cmdline"]):
            command = " ".join(proc.info.get("cmdline") or [])
            if f"instance={instance} session={session_id} " not in command:
                continue
            with contextlib.suppress(psutil.Error):
                ports = [c.laddr.port for c in proc.net_connections("tcp") if c.status == psutil.CONN_LISTEN]
                for port in ports:
                    answer = requests.get(f"http://127.0.0.1:{port}/health", timeout=self.http_timeout)
                    return float(answer.json()["time"])
        raise ChaosError(f"No container of session {session_id} answers on this platform (instance {instance}).")

    def _write_skew(self, path: Path, offset: timedelta, what: str) -> str:
        """Writes ``offset`` into the skew file ``path``, one ledger entry per file and test (restored on revert)."""
        seconds = offset.total_seconds()
        existing = [
            e for e in self.injector.ledger.mine() if e.get("kind") == "clock-skew" and e.get("file") == str(path)
        ]
        if existing:
            entry = existing[0]
        else:
            entry = self.injector.record(
                "clock-skew",
                f"{what} skewed (file {path})",
                [{"do": "restore-file", "path": str(path), "previous": local_faults.read_optional(path)}],
            )
            self.injector.ledger.update(entry["id"], file=str(path))
        try:
            local_faults.write_atomic(path, f"{seconds:.3f}\n")
        except OSError:
            self.injector.undo_now(entry)
            raise
        self.injector.injected_at = time.monotonic()
        self.injector.ledger.update(entry["id"], state="active", description=f"{what} skewed by {seconds:+.3f} s")
        self.info(f"{what[0].upper()}{what[1:]} skewed by {seconds:+.3f} s.")
        return entry["id"]

    def _set_platform_clock(self, target: float) -> str:
        return self.skew_platform_clock(timedelta(seconds=target - time.time()))

    @keyword(tags=["embedded-only", "chaos", "time"])
    def move_platform_clock(self, offset: timedelta) -> str:
        """Moves the platform clock on by ``offset`` from where it is now (negative: back); returns the fault id.

        Example:
        | Move Platform Clock | 10 s |
        """
        return self.skew_platform_clock(timedelta(seconds=self._current_skew() + offset.total_seconds()))

    @keyword(tags=["embedded-only", "chaos", "time"])
    def set_platform_clock_relative_to_session(self, session: SessionRef, field: str, offset: timedelta) -> str:
        """Sets the platform clock to the session's timestamp ``field`` plus ``offset``; returns the fault id.

        ``field`` is a timestamp of the session object (``expiresAt``, ``createdAt``, ``lastActivityAt`` ...).

        Example:
        | Set Platform Clock Relative To Session | ${session} | expiresAt | 5 s |
        """
        session_id = self.injector.guard_session(session)
        current = self.api.get_session(session_id)
        if field not in current or not isinstance(current[field], int | float):
            raise ValueError(f"Session {session_id} has no timestamp field '{field}': {current}")
        return self._set_platform_clock(float(current[field]) + offset.total_seconds())

    def _touch(self, session_id: str) -> float:
        """Use the session (list its files: the platform counts that as activity); returns the platform time
        just after the answer, an upper bound of the activity time the platform recorded."""
        response = self.ctx.api.request("GET", f"{self.ctx.api.session_path(session_id)}/files")
        if response.status != 200:
            raise ChaosError(f"Using session {session_id} failed: {response.describe()}")
        return self.get_platform_clock()

    def set_platform_clock_relative_to_last_activity(self, session: SessionRef, offset: timedelta) -> str:
        """Uses the session once, then sets the platform clock to that moment plus ``offset``; returns the fault id.

        Sets up idle-timeout boundaries exactly: with ``offset`` just below the idle timeout the session has been
        idle not quite long enough, just above it has been idle too long.

        Example:
        | Set Platform Clock Relative To Last Activity | ${session} | 115 s |
        """
        session_id = self.injector.guard_session(session)
        used_at = self._touch(session_id)
        return self._set_platform_clock(used_at + offset.total_seconds())

    @keyword(tags=["embedded-only", "chaos", "time"])
    def set_platform_clock_relative_to_idle_timeout(self, session: SessionRef, offset: timedelta) -> str:
        """Uses the session once, then sets the platform clock to that moment plus the platform's idle timeout
        plus ``offset`` (the ``idle_timeout`` setting of the embedded platform); returns the fault id.

        ``offset`` ``-5 s``: idle not quite long enough; ``5 s``: idle for too long.

        Example:
        | Set Platform Clock Relative To Idle Timeout | ${session} | -5 s |
        """
        idle = float(self.embedded.get_embedded_platform_setting("idle_timeout"))
        self.info(f"The platform's idle timeout is {format_seconds(idle)}.")
        return self.set_platform_clock_relative_to_last_activity(session, timedelta(seconds=idle) + offset)

    @keyword(tags=["embedded-only", "chaos", "time"])
    def advance_platform_clock_while_session_is_used(
        self, session: SessionRef, until_field: str, offset: timedelta, step: timedelta
    ) -> str:
        """Moves the platform clock forward in steps of ``step``, using the session after each, until it reads the
        session's ``until_field`` plus ``offset``; returns the fault id.

        A user who keeps working: the session never looks idle (``step`` must be below the idle timeout), so
        only its TTL is left to decide. Example: an hour of work in 5-minute steps, to 5 s before the TTL:
        | Advance Platform Clock While Session Is Used | ${session} | expiresAt | -5 s | 5 min |
        """
        session_id = self.injector.guard_session(session)
        if step.total_seconds() <= 0:
            raise ValueError(f"step must be positive, got {step}.")
        current = self.api.get_session(session_id)
        target = float(current[until_field]) + offset.total_seconds()
        fault = ""
        steps = 0
        while True:
            now = self.get_platform_clock()
            if now >= target:
                break
            fault = self._set_platform_clock(min(target, now + step.total_seconds()))
            self._touch(session_id)
            steps += 1
        self.info(f"Platform clock advanced in {steps} steps to {until_field} {offset.total_seconds():+g} s.")
        return fault or self._set_platform_clock(target)

    # ------------------------------------------------------------------ auto-scaling race
    def _since_test_start(self, platform_time: float) -> float:
        """Seconds from the start of the current test to ``platform_time`` (an epoch time on the platform clock)."""
        elapsed = time.monotonic() - self.injector.test_started
        return platform_time - (self.get_platform_clock() - elapsed)

    def _describe_capacity(self, capacity: dict, scalings: bool = True) -> str:
        """A readable line for a ``GET /capacity`` answer: the counts, then (``scalings``) the scalings since the
        test started, with their times in seconds from the test's start."""
        text = (
            f"capacity {capacity.get('capacity')}, desired {capacity.get('desired')}, "
            f"running {capacity.get('running')}, ceiling {capacity.get('max')}"
        )
        return f"{text}; {self._describe_scalings(capacity)}" if scalings else text

    def _describe_scalings(self, capacity: dict) -> str:
        """The scalings of a ``GET /capacity`` answer since the test started (``scale-in 6->4 at +2.10 s``)."""
        scalings = []
        for activity in capacity.get("activities", []):
            if not isinstance(activity.get("time"), int | float):
                continue
            since = self._since_test_start(float(activity["time"]))
            if since >= 0:
                kind, was, became = activity.get("kind"), activity.get("from"), activity.get("to")
                scalings.append(f"{kind} {was}->{became} at {since:+.2f} s")
        return f"scalings since the test started: {', '.join(scalings) or 'none'}"

    @staticmethod
    def _activity_key(activity: dict) -> tuple:
        return tuple(activity.get(k) for k in ("time", "kind", "from", "to", "desired"))

    @staticmethod
    def _has_surplus(capacity: dict, step: int, floor: int) -> bool:
        """The autoscaler's scale-in condition: fewer sessions than capacity minus a step, above the floor."""
        return capacity["desired"] < capacity["capacity"] - step and capacity["capacity"] > floor

    @keyword(tags=["embedded-only", "chaos", "scaling"])
    def create_sessions_while_the_platform_scales_in(
        self,
        count: int,
        ending: list | None = None,
        interval: timedelta = timedelta(seconds=0.25),
        timeout: timedelta | None = None,
    ) -> dict:
        """Ends the sessions ``ending`` and creates ``count`` new ones one by one, so that the platform scales in
        while they are created and started.

        The window is placed around the scale-in by construction, not by timing: the platform must have no
        surplus capacity when the keyword starts (scale out for a burst first). The ``ending`` sessions are ended
        only down to capacity minus one scaling step (``scale_out_step``), where no scale-in is due; then the
        first new session is created, and only then are the remaining ``ending`` sessions ended, which makes the
        surplus the platform scales in from. The keyword confirms that surplus (polling, with the deadline). New
        sessions are then created only while they keep a surplus of more than one step, and the last one only
        after a scale-in of this window was seen (or at the deadline, ``timeout`` or
        ``${FAULT_REACTION_TIMEOUT}``): a scale-in falls between the first and the last create.

        Returns ``{"result": <the creates, shaped like Create Sessions Concurrently's>, "scaleIns": [...],
        "capacities": [...], "summary": <a readable timeline, times in seconds from the test's start>}``.

        Example:
        | ${race} = | Create Sessions While The Platform Scales In | 5 | ending=${BURST.session_ids} |
        """
        self.injector.allow("race session creation against a scale-in")
        count = int(count)
        if count < 2:
            raise ValueError(f"count must be at least 2 (one create before the scale-in, one after), got {count}.")
        api = self.api
        step = int(self.embedded.get_embedded_platform_setting("scale_out_step"))
        floor = int(self.embedded.get_embedded_platform_setting("min_capacity"))
        remaining = list(ending or [])
        for session_id in remaining:
            self.injector.guard_session(session_id, "end a session during a scale-in race")
        deadline = time.monotonic() + (
            timeout.total_seconds() if timeout is not None else self.profile.seconds("FAULT_REACTION_TIMEOUT")
        )
        capacity = api.get_capacity()
        if self._has_surplus(capacity, step, floor):
            raise ChaosError(
                "The platform already has surplus capacity before the race, so a scale-in may come before the "
                f"first create: {self._describe_capacity(capacity)}. Scale out for a burst first."
            )
        timeline: list[str] = []

        def note(event: str) -> None:
            timeline.append(f"{self._since_test_start(self.get_platform_clock()):+.2f} s {event}")

        # Ending sessions down to capacity minus a step leaves no surplus: no scale-in is due yet.
        ended = 0
        while remaining and capacity["desired"] - 1 >= capacity["capacity"] - step:
            api.delete_session(remaining.pop(0), missing_ok=True)
            ended += 1
            capacity = api.get_capacity()
        note(f"ended {ended} session(s), no surplus yet ({self._describe_capacity(capacity, False)})")
        known = {self._activity_key(a) for a in capacity.get("activities", [])}
        window_start = self.get_platform_clock()
        successes: list[dict] = []
        failures: list[dict] = []
        capacities: list[dict] = []
        scale_ins: list[dict] = []

        def create() -> None:
            answer = api.try_to_create_session()
            if answer["status"] == 201:
                successes.append(answer["body"])
            else:
                failures.append({**answer, "message": None, "exception": None})
            note(f"create {len(successes) + len(failures)} answered {answer['status']}")

        def in_window(capacity: dict) -> list[dict]:
            return [
                a
                for a in capacity.get("activities", [])
                if a.get("kind") == "scale-in" and self._activity_key(a) not in known and a["time"] >= window_start
            ]

        # The invariant is watched for the whole window, not only at its end: a scale-in that cuts below the running
        # containers and a scale-out that repairs it later would leave the end looking healthy.
        sampling = threading.Event()

        def sample() -> None:  # through the one API client (its sessions are per thread)
            while not sampling.wait(self.profile.seconds("POLL_INTERVAL")):
                with contextlib.suppress(requests.RequestException, ValueError):
                    answer = self.ctx.api.request("GET", "/capacity", timeout=self.http_timeout)
                    seen = answer.body if answer.status == 200 and isinstance(answer.body, dict) else None
                    if seen is not None:
                        capacities.append(
                            {"at": round(self._since_test_start(self.get_platform_clock()), 3)}
                            | {k: seen.get(k) for k in ("capacity", "desired", "running", "pending")}
                        )

        sampler = threading.Thread(target=sample, name="capacity-sampler", daemon=True)
        sampler.start()
        started = time.perf_counter()
        create()  # the window opens before any surplus exists
        for session_id in remaining:
            api.delete_session(session_id, missing_ok=True)
        note(f"ended the other {len(remaining)} session(s)")

        def surplus_or_scale_in():
            seen = api.get_capacity()
            return seen if in_window(seen) or self._has_surplus(seen, step, floor) else None

        confirmed = wait_until(
            surplus_or_scale_in,
            max(0.0, deadline - time.monotonic()),
            self.profile.seconds("POLL_INTERVAL"),
            lambda: (
                "Ending the sessions left no surplus capacity to scale in from (a surplus is more than one "
                f"scaling step of {step} above the sessions, above the floor of {floor}): "
                f"{self._describe_capacity(api.get_capacity())}. Times from the test's start: {'; '.join(timeline)}"
            ),
        )
        note(f"surplus confirmed ({self._describe_capacity(confirmed.value, False)})")
        next_create = time.monotonic() + interval.total_seconds()
        while len(successes) + len(failures) < count:
            capacity = api.get_capacity()
            found = in_window(capacity)
            if found and not scale_ins:
                note(f"scale-in seen ({self._describe_capacity(capacity, False)})")
            scale_ins = found or scale_ins
            left = count - len(successes) - len(failures)
            # Before the scale-in: only creates that keep the surplus, and never the last one.
            keeps_surplus = capacity["desired"] + 1 < capacity["capacity"] - step and left > 1
            if time.monotonic() >= next_create and (scale_ins or keeps_surplus or time.monotonic() > deadline):
                create()
                next_create = time.monotonic() + interval.total_seconds()
            time.sleep(self.profile.seconds("POLL_INTERVAL"))
        # Watched on until every new session has settled, so the scale-out a cut below the load needs is seen too.
        with contextlib.suppress(AssertionError):
            wait_until(
                lambda: True if api.get_capacity()["pending"] == 0 else None,
                self.profile.seconds("SESSION_SETTLE_TIMEOUT"),
                self.profile.seconds("POLL_INTERVAL"),
                lambda: "sessions still pending",
            )
        sampling.set()
        sampler.join(self.http_timeout + 1)
        result = ConcurrentCreateResult(count, successes, failures, time.perf_counter() - started)
        timeline.append(self._describe_scalings(api.get_capacity()))
        summary = "times from the test's start: " + "; ".join(timeline)
        self.info(f"Created {len(successes)} of {count} sessions in {format_seconds(result.seconds)}; {summary}")
        return {"result": result, "scaleIns": scale_ins, "capacities": capacities, "summary": summary}

    @keyword(tags=["chaos", "scaling", "wait"])
    def wait_until_capacity_covers(self, sessions: int, timeout: timedelta | None = None) -> float:
        """Waits until the platform has scaled out to at least ``sessions`` slots; returns the seconds it took.

        The deadline is ``timeout`` or ``${SESSION_START_TIMEOUT}``; at the deadline the keyword fails saying how
        far the capacity got and how many sessions were waiting.
        """
        seen: dict[str, Any] = {}

        def probe():
            seen["capacity"] = capacity = self.api.get_capacity()
            return True if capacity["capacity"] >= int(sessions) else None

        deadline = timeout.total_seconds() if timeout is not None else self.profile.seconds("SESSION_START_TIMEOUT")
        waited = wait_until(
            probe,
            deadline,
            self.profile.seconds("POLL_INTERVAL"),
            lambda: (
                f"The platform did not scale out to {sessions} slots while {seen['capacity'].get('pending')} "
                f"session(s) waited for capacity: {self._describe_capacity(seen['capacity'])}"
            ),
        )
        self.info(f"Capacity reached {sessions} slots after {format_seconds(waited.seconds)}.")
        return waited.seconds

    @keyword(tags=["chaos", "scaling", "assertion"])
    def capacity_should_have_covered_the_running_containers_throughout(self, race: dict) -> int:
        """Fails when a scale-in of ``race`` (`Create Sessions While The Platform Scales In`) went below the sessions
        wanted at that moment, or when any capacity sample (every poll interval through the whole window) had more
        containers running than capacity provisioned: a scale-in never cuts below the load, at any moment of the
        window, not only at its end.
        Returns the number of samples checked.
        """
        samples = list(race.get("capacities") or [])
        if not samples:
            raise AssertionError("The race recorded no capacity sample: nothing shows the invariant held.")
        below = [a for a in race.get("scaleIns") or [] if a.get("to", 0) < a.get("desired", 0)]
        if below:
            raise AssertionError(
                "A scale-in cut capacity below the sessions it served: "
                + "; ".join(f"{a['from']} -> {a['to']} with {a['desired']} sessions wanted" for a in below)
                + f" ({race.get('summary', '')})"
            )
        cut = [s for s in samples if (s.get("running") or 0) > (s.get("capacity") or 0)]
        if cut:
            first, worst = cut[0], max(cut, key=lambda s: s["running"] - s["capacity"])
            raise AssertionError(
                f"A scale-in cut capacity below the running containers in {len(cut)} of {len(samples)} samples: "
                f"first at {first['at']:+.2f} s ({first['running']} running on {first['capacity']}), worst "
                f"{worst['running']} running on {worst['capacity']} at {worst['at']:+.2f} s (times from the test's "
                f"start; {race.get('summary', '')})"
            )
        self.info(f"Capacity covered the running containers in all {len(samples)} samples of the window.")
        return len(samples)

    @keyword(tags=["chaos", "scaling", "assertion"])
    def capacity_should_cover_running_sessions(self) -> dict:
        """Fails when fewer slots are provisioned than containers run (a scale-in that cut below its load)."""
        capacity = self.api.get_capacity()
        if capacity["running"] > capacity["capacity"]:
            raise AssertionError(
                f"{capacity['running']} containers run on a capacity of {capacity['capacity']}: "
                f"{self._describe_capacity(capacity)}"
            )
        return capacity
