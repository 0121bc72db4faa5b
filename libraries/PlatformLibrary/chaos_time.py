"""Chaos keywords for time faults (clock skew, TTL and idle boundaries) and the auto-scaling race."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from robot.api.deco import keyword

from .backends import local_faults
from .chaos_ledger import ChaosError
from .platform_api import ConcurrentCreateResult, SessionRef
from .profile import format_seconds
from .waiting import wait_until


class ChaosTimeKeywords:
    """Time faults and the scale-in race (a part of ``ChaosKeywords``)."""

    # ------------------------------------------------------------------ time faults
    def _skew_file(self) -> Path:
        return Path(str(self.endpoint("CLOCK_SKEW_FILE")))

    @keyword(tags=["chaos", "time"])
    def get_platform_clock(self) -> float:
        """Returns the platform's wall clock (epoch seconds) as it believes it: this host's clock plus the skew."""
        return time.time() + self._current_skew()

    def _current_skew(self) -> float:
        text = local_faults.read_optional(self._skew_file())
        try:
            return float((text or "0").strip() or 0)
        except ValueError:
            return 0.0

    @keyword(tags=["chaos", "time"])
    def skew_platform_clock(self, offset: timedelta) -> str:
        """Moves the clock of the platform and of all its containers by ``offset`` (negative: back); returns the
        fault id. Timers and timeouts of the platform use a monotonic clock and are not affected, as on a real host.

        Calls in one test replace each other's offset; revert puts the file back as it was before the first.

        Example:
        | ${fault} = | Skew Platform Clock | 5 min |
        | ${fault} = | Skew Platform Clock | -5 min |
        """
        self._guard_whole_platform("Clock skew")
        self._require_embedded("Skew Platform Clock")
        path = self._skew_file()
        seconds = offset.total_seconds()
        existing = [e for e in self.ledger.mine() if e.get("kind") == "clock-skew" and e.get("file") == str(path)]
        if existing:
            entry = existing[0]
        else:
            entry = self._record(
                "clock-skew",
                f"platform clock skewed (file {path})",
                [{"do": "restore-file", "path": str(path), "previous": local_faults.read_optional(path)}],
            )
            self.ledger.update(entry["id"], file=str(path))
        try:
            local_faults.write_atomic(path, f"{seconds:.3f}\n")
        except OSError:
            self._undo_now(entry)
            raise
        self._injected_at = time.monotonic()
        self.ledger.update(entry["id"], state="active", description=f"platform clock skewed by {seconds:+.3f} s")
        self.info(f"Platform clock skewed by {seconds:+.3f} s (platform time {self.get_platform_clock():.3f}).")
        return entry["id"]

    def _set_platform_clock(self, target: float) -> str:
        return self.skew_platform_clock(timedelta(seconds=target - time.time()))

    @keyword(tags=["chaos", "time"])
    def move_platform_clock(self, offset: timedelta) -> str:
        """Moves the platform clock on by ``offset`` from where it is now (negative: back); returns the fault id.

        Example:
        | Move Platform Clock | 10 s |
        """
        return self.skew_platform_clock(timedelta(seconds=self._current_skew() + offset.total_seconds()))

    @keyword(tags=["chaos", "time"])
    def set_platform_clock_relative_to_session(self, session: SessionRef, field: str, offset: timedelta) -> str:
        """Sets the platform clock to the session's timestamp ``field`` plus ``offset``; returns the fault id.

        ``field`` is a timestamp of the session object (``expiresAt``, ``createdAt``, ``lastActivityAt`` ...).

        Example:
        | Set Platform Clock Relative To Session | ${session} | expiresAt | 5 s |
        """
        session_id = self._guard_session(session)
        current = self.library.api_keywords.get_session(session_id)
        if field not in current or not isinstance(current[field], int | float):
            raise ValueError(f"Session {session_id} has no timestamp field '{field}': {current}")
        return self._set_platform_clock(float(current[field]) + offset.total_seconds())

    def _touch(self, session_id: str) -> float:
        """Use the session (list its files: the platform counts that as activity); returns the platform time
        just after the answer, an upper bound of the activity time the platform recorded."""
        response = self.library.api.request("GET", f"{self.library.api.session_path(session_id)}/files")
        if response.status != 200:
            raise ChaosError(f"Using session {session_id} failed: {response.describe()}")
        return self.get_platform_clock()

    @keyword(tags=["chaos", "time"])
    def set_platform_clock_relative_to_last_activity(self, session: SessionRef, offset: timedelta) -> str:
        """Uses the session once, then sets the platform clock to that moment plus ``offset``; returns the fault id.

        Sets up idle-timeout boundaries exactly: with ``offset`` just below the idle timeout the session has been
        idle not quite long enough, just above it has been idle too long.

        Example:
        | Set Platform Clock Relative To Last Activity | ${session} | 115 s |
        """
        session_id = self._guard_session(session)
        used_at = self._touch(session_id)
        return self._set_platform_clock(used_at + offset.total_seconds())

    @keyword(tags=["chaos", "time"])
    def set_platform_clock_relative_to_idle_timeout(self, session: SessionRef, offset: timedelta) -> str:
        """Uses the session once, then sets the platform clock to that moment plus the platform's idle timeout
        plus ``offset`` (the ``idle_timeout`` setting of the embedded platform); returns the fault id.

        ``offset`` ``-5 s``: idle not quite long enough; ``5 s``: idle for too long.

        Example:
        | Set Platform Clock Relative To Idle Timeout | ${session} | -5 s |
        """
        idle = float(self.get_embedded_platform_setting("idle_timeout"))
        self.info(f"The platform's idle timeout is {format_seconds(idle)}.")
        return self.set_platform_clock_relative_to_last_activity(session, timedelta(seconds=idle) + offset)

    @keyword(tags=["chaos", "time"])
    def advance_platform_clock_while_session_is_used(
        self, session: SessionRef, until_field: str, offset: timedelta, step: timedelta
    ) -> str:
        """Moves the platform clock forward in steps of ``step``, using the session after each, until it reads the
        session's ``until_field`` plus ``offset``; returns the fault id.

        A user who keeps working: the session never looks idle (``step`` must be below the idle timeout), so
        only its TTL is left to decide. Example: an hour of work in 5-minute steps, to 5 s before the TTL:
        | Advance Platform Clock While Session Is Used | ${session} | expiresAt | -5 s | 5 min |
        """
        session_id = self._guard_session(session)
        if step.total_seconds() <= 0:
            raise ValueError(f"step must be positive, got {step}.")
        current = self.library.api_keywords.get_session(session_id)
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
    @keyword(tags=["chaos", "scaling"])
    def create_sessions_while_the_platform_scales_in(
        self,
        count: int,
        ending: list | None = None,
        interval: timedelta = timedelta(seconds=0.25),
        timeout: timedelta | None = None,
    ) -> dict:
        """Ends the sessions ``ending`` and creates ``count`` new ones one by one while the platform scales in.

        Ending sessions leaves the platform with surplus capacity; new sessions are then created only as long as
        they keep a surplus of more than one scaling step (the ``scale_out_step`` setting), so the platform's
        scale-in decision falls while sessions are being created and started. Once it has scaled in, the rest
        are created right away. Returns ``{"result": <the creates, shaped like Create Sessions Concurrently's>,
        "scaleIns": [...], "capacities": [...]}``. The deadline is ``timeout`` or ``${FAULT_REACTION_TIMEOUT}``.

        Example:
        | ${race} = | Create Sessions While The Platform Scales In | 5 | ending=${BURST.session_ids} |
        """
        self._allow("race session creation against a scale-in")
        api = self.library.api_keywords
        step = int(self.get_embedded_platform_setting("scale_out_step"))
        window_start = self.get_platform_clock()
        for session_id in ending or []:
            self._guard_session(session_id, "end a session during a scale-in race")
            api.delete_session(session_id, missing_ok=True)
        before = api.get_capacity()
        if before["capacity"] - before["desired"] <= step:
            raise ChaosError(
                f"The platform has no surplus capacity to scale in from: {before}. End some sessions first."
            )
        deadline = time.monotonic() + (
            timeout.total_seconds() if timeout is not None else self.profile.seconds("FAULT_REACTION_TIMEOUT")
        )
        successes, failures, capacities = [], [], []
        scale_ins: list[dict] = []
        started = time.perf_counter()
        next_create = 0.0
        while len(successes) + len(failures) < int(count):
            capacity = api.get_capacity()
            capacities.append({k: capacity.get(k) for k in ("capacity", "desired", "running", "pending")})
            scale_ins = [
                a for a in capacity.get("activities", []) if a.get("kind") == "scale-in" and a["time"] >= window_start
            ]
            keeps_surplus = capacity["desired"] + 1 < capacity["capacity"] - step
            if time.monotonic() >= next_create and (scale_ins or keeps_surplus or time.monotonic() > deadline):
                answer = api.try_to_create_session()
                (successes if answer["status"] == 201 else failures).append(
                    answer["body"] if answer["status"] == 201 else {**answer, "message": None, "exception": None}
                )
                next_create = time.monotonic() + interval.total_seconds()
            time.sleep(self.profile.seconds("POLL_INTERVAL"))
        result = ConcurrentCreateResult(int(count), successes, failures, time.perf_counter() - started)
        self.info(
            f"Created {len(successes)} of {count} sessions in {format_seconds(result.seconds)}; scale-ins meanwhile: "
            f"{scale_ins or 'none'}; capacity samples: {capacities[:: max(1, len(capacities) // 20)]}"
        )
        return {"result": result, "scaleIns": scale_ins, "capacities": capacities}

    @keyword(tags=["chaos", "scaling", "wait"])
    def wait_until_capacity_covers(self, sessions: int, timeout: timedelta | None = None) -> float:
        """Waits until the platform has scaled out to at least ``sessions`` slots; returns the seconds it took.

        The deadline is ``timeout`` or ``${SESSION_START_TIMEOUT}``; at the deadline the keyword fails saying how
        far the capacity got and how many sessions were waiting.
        """
        seen: dict[str, Any] = {}

        def probe():
            seen["capacity"] = capacity = self.library.api_keywords.get_capacity()
            return True if capacity["capacity"] >= int(sessions) else None

        deadline = timeout.total_seconds() if timeout is not None else self.profile.seconds("SESSION_START_TIMEOUT")
        waited = wait_until(
            probe,
            deadline,
            self.profile.seconds("POLL_INTERVAL"),
            lambda: (
                f"The platform did not scale out to {sessions} slots: capacity {seen['capacity'].get('capacity')} "
                f"(ceiling {seen['capacity'].get('max')}) with {seen['capacity'].get('pending')} session(s) waiting"
            ),
        )
        self.info(f"Capacity reached {sessions} slots after {format_seconds(waited.seconds)}.")
        return waited.seconds

    @keyword(tags=["chaos", "scaling", "assertion"])
    def capacity_should_cover_running_sessions(self) -> dict:
        """Fails when fewer slots are provisioned than containers run (a scale-in that cut below its load)."""
        capacity = self.library.api_keywords.get_capacity()
        if capacity["running"] > capacity["capacity"]:
            raise AssertionError(f"{capacity['running']} containers run on a capacity of {capacity['capacity']}.")
        return capacity
