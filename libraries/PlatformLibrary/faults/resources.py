"""Chaos keywords for resource faults: memory pressure and CPU throttling in the container's cgroup, EFS loss,
and the loss of the container control plane (the ECS API) the platform starts and stops containers through."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from robot.api.deco import keyword

from ..core.base import LibraryComponent, LibraryContext
from ..core.profile import format_seconds
from ..core.waiting import wait_until
from ..sessions.api import PlatformApiKeywords, SessionRef
from ..targets.containers import ContainerKeywords
from ..targets.embedded import faults as local_faults
from .helpers import ContainerHelpers
from .injector import FaultInjector
from .ledger import ChaosError

MIB = 1024 * 1024


class ChaosResourceKeywords(LibraryComponent):
    """Resource faults: memory pressure, CPU throttling, an unavailable workspace (embedded platform: cgroups), an
    unavailable container control plane (embedded platform: its control-plane file)."""

    def __init__(
        self,
        ctx: LibraryContext,
        injector: FaultInjector,
        api: PlatformApiKeywords,
        containers: ContainerKeywords,
        helpers: ContainerHelpers,
    ):
        super().__init__(ctx)
        self.injector = injector
        self.api = api
        self.containers = containers
        self.helpers = helpers  # the container and its cgroups; helper processes kept in the fault ledger
        self._pressure: dict[str, dict[str, Any]] = {}
        self._cpu: dict[str, dict[str, Any]] = {}

    # ------------------------------------------------------------------ resource faults (cgroups, EFS)
    @keyword(tags=["embedded-only", "chaos", "resources", "memory"])
    def apply_memory_pressure_to_session_container(self, session: SessionRef, lifetime: timedelta | None = None) -> str:
        """Fills the memory cgroup of the session's container past its limit; returns the fault id.

        A helper process joins the container's memory cgroup and allocates memory that is charged to the cgroup
        but not counted as its own, so the kernel's OOM killer picks the container's process, as it would for a
        leak in the application. The helper allocates up to the limit plus 64 MiB (or ``${CHAOS_MEMORY_HOG_MAX}``,
        default 512 MiB, when the container has no limit), stops as soon as the container is gone, dies with the
        test process and never lives longer than ``lifetime`` (default ``${RECOVERY_TIMEOUT}``).
        See `Wait Until Session Container Is Killed For Memory`.

        Example:
        | ${fault} = | Apply Memory Pressure To Session Container | ${session} |
        """
        session_id = self.injector.guard_session(session)
        container, group = self.helpers.cgroup_of(session_id)
        limit = group.memory_limit()
        cap = self._memory_cap()
        target = min(limit + 64 * MIB, cap) if limit else cap
        seconds = lifetime.total_seconds() if lifetime is not None else self.profile.seconds("RECOVERY_TIMEOUT")
        marker = f"hog-{self.context.run_id}-{int(time.time() * 1000) % 10**9}"
        limit_text = f"{limit // MIB} MiB" if limit else "none"
        entry = self.injector.record(
            "memory-pressure",
            f"memory hog of {target // MIB} MiB in the cgroup of session {session_id} (limit {limit_text})",
            [{"do": "kill-helper", "marker": marker, "pid": None}],
        )
        # The OOM kill comes when the cgroup is full, well after the helper starts: recovery counts from the exit.
        exit_watch = local_faults.ExitWatch(container.pid, lifetime=seconds)
        try:
            pid, start_time, _ = local_faults.start_helper(
                "hog", marker, [group.memory_dir / "cgroup.procs"], container.pid, seconds, max_bytes=target
            )
        except Exception:
            exit_watch.close()
            self.injector.undo_now(entry)
            raise
        self.injector.ledger.update(
            entry["id"], undo=[{"do": "kill-helper", "marker": marker, "pid": pid, "startTime": start_time}]
        )
        self._pressure[session_id] = {
            "pid": container.pid,
            "container": container,
            "group": group,
            "limit": limit,
            "target": target,
            "oomBefore": group.oom_kills(),
            "at": time.monotonic(),
            "exit": exit_watch,
        }
        return self.injector.activate(entry)

    def _memory_cap(self) -> int:
        """``${CHAOS_MEMORY_HOG_MAX}`` in bytes (a number of bytes or ``<n> MiB``), default 512 MiB."""
        value = str(self.profile.get("CHAOS_MEMORY_HOG_MAX", 512 * MIB)).strip()
        if value.lower().endswith("mib"):
            return int(float(value[:-3]) * MIB)
        return int(value)

    @keyword(tags=["embedded-only", "chaos", "resources", "memory", "wait"])
    def wait_until_session_container_is_killed_for_memory(
        self, session: SessionRef, timeout: timedelta | None = None
    ) -> int:
        """Waits until the container under memory pressure is gone; returns its pid (for `Wait Until Container
        Restarted`).

        Fails at the deadline (``timeout`` or ``${FAULT_REACTION_TIMEOUT}``) saying how much the cgroup held, its
        limit and the kernel's OOM-kill count: a container that survives pressure past its limit has no working
        memory limit.
        """
        session_id = self.session_id_of(session)
        pressure = self._pressure.get(session_id)
        if pressure is None:
            raise ValueError(f"No memory pressure was applied to session {session_id} by this library.")
        backend = self.containers.backend

        def describe():
            group = pressure["group"]
            try:
                usage = int((group.memory_dir / "memory.usage_in_bytes").read_text()) // MIB
            except (OSError, ValueError):
                usage = "?"
            limit = f"{pressure['limit'] // MIB} MiB" if pressure["limit"] else "none (no memory limit)"
            return (
                f"The container of session {session_id} (pid {pressure['pid']}) was not killed under memory pressure: "
                f"its cgroup holds {usage} MiB, memory limit {limit}, kernel OOM kills in the cgroup "
                f"{group.oom_kills() - pressure['oomBefore']}"
            )

        deadline = timeout.total_seconds() if timeout is not None else self.profile.seconds("FAULT_REACTION_TIMEOUT")
        waited = wait_until(
            lambda: True if not backend.is_alive(pressure["container"]) else None,
            deadline,
            self.profile.seconds("POLL_INTERVAL"),
            describe,
        )
        # The recovery's origin is the container's exit (a pidfd's event), not the start of the pressure: filling
        # the cgroup takes its own time, which is neither the platform's detection nor its recovery.
        exited_at = pressure["exit"].wait(1.0)
        died = exited_at if exited_at is not None else pressure["at"]
        origin = f"its exit ({pressure['exit'].how})" if exited_at is not None else "the start of the pressure"
        self.info(
            f"Container pid {pressure['pid']} of session {session_id} was killed "
            f"{format_seconds(died - pressure['at'])} into the memory pressure (kernel OOM kills: "
            f"{pressure['group'].oom_kills() - pressure['oomBefore']}; seen gone after "
            f"{format_seconds(waited.seconds)}); recovery counts from {origin}."
        )
        self.containers.note_kill(session_id, pressure["container"], died, None)
        return int(pressure["pid"])

    @keyword(tags=["embedded-only", "chaos", "resources", "cpu"])
    def throttle_session_container_cpu(self, session: SessionRef, cores: float = 0.1, busy: bool = True) -> str:
        """Lowers the CPU quota of the session's container to ``cores`` CPUs; returns the fault id.

        With ``busy=True`` a helper process that burns CPU joins the container's CPU cgroup too (a build job in
        the user's container), so the lowered quota really bites. Reverting writes the old quota back and stops
        the helper. See `Session Container Should Be CPU Throttled`.

        Example:
        | ${fault} = | Throttle Session Container CPU | ${session} | cores=0.1 |
        """
        session_id = self.injector.guard_session(session)
        container, group = self.helpers.cgroup_of(session_id)
        previous = group.cpu_quota_text()
        wanted = group.quota_text_for(float(cores))
        restore = {"do": "restore-cgroup", "path": str(group.cpu_quota_file), "previous": previous}
        description = f"CPU quota of session {session_id} {previous} -> {wanted}"
        self._cpu[session_id] = {"group": group, "previous": previous, "throttled": group.cpu_throttled()}
        if busy:
            return self.helpers.helper_fault(
                "burn",
                "cpu-throttle",
                description,
                [restore],
                container,
                [group.cpu_dir / "cgroup.procs"],
                apply=lambda: group.cpu_quota_file.write_text(wanted),
            )
        entry = self.injector.record("cpu-throttle", description, [restore])
        try:
            group.cpu_quota_file.write_text(wanted)
        except Exception:
            self.injector.undo_now(entry)
            raise
        return self.injector.activate(entry)

    @keyword(tags=["embedded-only", "chaos", "resources", "cpu", "assertion"])
    def session_container_should_be_cpu_throttled(self, session: SessionRef, timeout: timedelta | None = None) -> int:
        """Waits until the kernel has throttled the container's CPU cgroup since the fault; returns the periods.

        Proof the fault is real (``nr_throttled`` in ``cpu.stat`` grows). Deadline: ``${FAULT_REACTION_TIMEOUT}``.
        """
        session_id = self.session_id_of(session)
        cpu = self._cpu.get(session_id)
        if cpu is None:
            raise ValueError(f"No CPU throttling was applied to session {session_id} by this library.")
        deadline = timeout.total_seconds() if timeout is not None else self.profile.seconds("FAULT_REACTION_TIMEOUT")
        waited = wait_until(
            lambda: (cpu["group"].cpu_throttled() - cpu["throttled"]) or None,
            deadline,
            self.profile.seconds("POLL_INTERVAL"),
            lambda: f"The CPU cgroup of session {session_id} was never throttled ({cpu['group'].cpu_dir})",
        )
        self.info(f"The container of session {session_id} was throttled in {waited.value} CPU periods.")
        return int(waited.value)

    @keyword(tags=["embedded-only", "chaos", "resources", "cpu"])
    def get_session_container_cpu_throttled_periods(self, session: SessionRef) -> int:
        """Returns how many CPU periods the kernel has throttled the session's container in so far (``nr_throttled``
        of its cgroup's ``cpu.stat``): read before and after a stretch of work, it proves the throttle bit during it.

        Example:
        | ${before} = | Get Session Container CPU Throttled Periods | ${session} |
        """
        _, group = self.helpers.cgroup_of(self.session_id_of(session))
        return int(group.cpu_throttled())

    @keyword(tags=["embedded-only", "chaos", "resources", "cpu", "assertion"])
    def session_container_cpu_quota_should_be_restored(self, session: SessionRef) -> None:
        """Fails unless the container's CPU quota is back to its value before `Throttle Session Container CPU`."""
        session_id = self.session_id_of(session)
        cpu = self._cpu.get(session_id)
        if cpu is None:
            raise ValueError(f"No CPU throttling was applied to session {session_id} by this library.")
        current = cpu["group"].cpu_quota_text()
        if current != cpu["previous"]:
            raise AssertionError(f"CPU quota of session {session_id} is {current}, expected {cpu['previous']}.")

    @keyword(tags=["embedded-only", "chaos", "resources", "efs"])
    def make_session_workspace_unavailable(self, session: SessionRef) -> str:
        """Takes the session's workspace away, as a failed EFS mount would; returns the fault id.

        The user's folder ``<EFS_ROOT>/<clientId>/<userId>`` (the session's ``workspace``) is renamed to a
        folder beside the EFS root and renamed back on revert; nothing inside it is touched.

        Example:
        | ${fault} = | Make Session Workspace Unavailable | ${session} |
        """
        session_id = self.injector.guard_session(session)
        workspace = Path(str(self.api.get_session(session_id)["workspace"]))
        efs_root = Path(str(self.endpoint("EFS_ROOT")))
        if efs_root not in workspace.parents:
            raise ChaosError(f"Workspace {workspace} of session {session_id} is not below EFS_ROOT {efs_root}.")
        moved = efs_root.parent / "efs-unavailable" / f"{session_id}-{int(time.time() * 1000)}"
        entry = self.injector.record(
            "workspace-unavailable",
            f"workspace {workspace} of session {session_id} unavailable",
            [{"do": "move-back", "original": str(workspace), "moved": str(moved)}],
        )
        try:
            local_faults.move_workspace_away(workspace, moved)
        except Exception:
            self.injector.undo_now(entry)
            raise
        return self.injector.activate(entry)

    @keyword(tags=["embedded-only", "chaos", "control-plane"])
    def make_container_control_plane_unavailable(
        self, error: Literal["ServiceUnavailable", "ThrottlingException"] = "ServiceUnavailable"
    ) -> str:
        """Makes the platform's container control plane (the ECS API) unavailable; returns the fault id.

        Every call the platform makes to it (RunTask for a cold start, a replacement or a warm-pool agent,
        StopTask, the desired count of scaling) then fails with ``error``, as ECS answers during an outage of its
        API: ``ServiceUnavailable`` or ``ThrottlingException``. Containers already running keep running: an ECS
        outage does not stop tasks. The error is written into the platform's ``CONTROL_PLANE_FILE``;
        `Revert Fault` puts back what the file held. Embedded only: AWS has no fault that makes the ECS API answer
        errors (FIS acts on tasks, not on the API); `Cut Off ECS From The Platform` cuts the platform's route to ECS on
        both targets instead (its calls then time out).

        Example:
        | ${fault} = | Make Container Control Plane Unavailable |
        | ${fault} = | Make Container Control Plane Unavailable | error=ThrottlingException |
        """
        if error not in local_faults.CONTROL_PLANE_ERRORS:
            raise ValueError(
                f"error must be one of {', '.join(local_faults.CONTROL_PLANE_ERRORS)} (as ECS answers), got {error!r}."
            )
        self.injector.guard_whole_platform("A container control plane outage")
        return self.control_plane_outage(error, f"container control plane unavailable: ECS answers {error}")

    def control_plane_outage(self, word: str, description: str) -> str:
        """Writes ``word`` (an ECS error code, or ``Unreachable``: the calls time out) into the platform's
        ``CONTROL_PLANE_FILE``, kept in the fault ledger with the file's old content as its revert; returns the fault
        id. The caller has asked the injector's guard (the outage hits the whole platform): `Make Container Control
        Plane Unavailable`, and `Cut Off ECS From The Platform` through the embedded ECS route."""
        path = Path(str(self.endpoint("CONTROL_PLANE_FILE")))
        entry = self.injector.record(
            "control-plane-outage",
            f"{description} (file {path})",
            [{"do": "restore-file", "path": str(path), "previous": local_faults.read_optional(path)}],
        )
        try:
            local_faults.make_control_plane_unavailable(path, word)
        except Exception:
            self.injector.undo_now(entry)
            raise
        return self.injector.activate(entry)
