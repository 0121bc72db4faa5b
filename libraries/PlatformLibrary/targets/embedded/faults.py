"""OS-level fault mechanics for the embedded platform: they act on real things from outside the platform's code.

* memory pressure: a hog process joins the container's memory cgroup (with ``oom_score_adj=-1000``, so the kernel's
  OOM killer picks the container's own process) and allocates until the container is killed;
* CPU throttling: the container's CPU quota in its cgroup is lowered (and a CPU burner joins the cgroup so the
  quota bites), the old value is restored afterwards;
* EFS mount failure: the user's workspace folder is renamed away and back;
* clock skew: seconds written into the platform's clock-skew file;
* container control plane outage: an ECS error code written into the platform's control-plane file.

Helper processes (hog, burner) are started as ``python <this file> hog|burn ...``; they only need the standard
library, die with the process that started them (``PR_SET_PDEATHSIG``), stop as soon as the container they press
on is gone, and never outlive ``--lifetime``. Nothing here imports Robot Framework.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import select
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
HELPER_TITLE = "chaos-helper"
UNLIMITED = 1 << 62  # cgroup v1 reports "no limit" as a huge page-rounded number (9223372036854771712)


class LocalFaultError(AssertionError):
    ROBOT_SUPPRESS_NAME = True


@dataclass(frozen=True)
class ContainerCgroup:
    """Where the limits of one container live (``<sessionId>.<generation>`` under ``testbed/<instance>``)."""

    mode: str
    memory_dir: Path
    cpu_dir: Path

    @property
    def memory_limit_file(self) -> Path:
        return self.memory_dir / ("memory.limit_in_bytes" if self.mode == "cgroup-v1" else "memory.max")

    @property
    def cpu_quota_file(self) -> Path:
        return self.cpu_dir / ("cpu.cfs_quota_us" if self.mode == "cgroup-v1" else "cpu.max")

    def memory_limit(self) -> int | None:
        """The container's memory limit in bytes, ``None`` when there is none."""
        text = self.memory_limit_file.read_text().strip()
        if text == "max":
            return None
        value = int(text)
        return None if value >= UNLIMITED else value

    def procs(self, which: str = "memory") -> list[int]:
        directory = self.memory_dir if which == "memory" else self.cpu_dir
        text = (directory / "cgroup.procs").read_text()
        return [int(line) for line in text.split()]

    def oom_kills(self) -> int:
        name = "memory.oom_control" if self.mode == "cgroup-v1" else "memory.events"
        with contextlib.suppress(OSError, ValueError):
            for line in (self.memory_dir / name).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        return 0

    def cpu_throttled(self) -> int:
        """How many CFS periods the container was throttled in so far (``nr_throttled`` of ``cpu.stat``)."""
        with contextlib.suppress(OSError, ValueError):
            for line in (self.cpu_dir / "cpu.stat").read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "nr_throttled":
                    return int(value)
        return 0

    def cpu_period(self) -> int:
        if self.mode == "cgroup-v1":
            return int((self.cpu_dir / "cpu.cfs_period_us").read_text())
        return int(self.cpu_quota_file.read_text().split()[1])

    def cpu_quota_text(self) -> str:
        return self.cpu_quota_file.read_text().strip()

    def quota_text_for(self, cores: float) -> str:
        period = self.cpu_period()
        quota = max(1000, int(period * cores))
        return str(quota) if self.mode == "cgroup-v1" else f"{quota} {period}"


def container_cgroup(mode: str, instance: str, pid: int, root: Path = CGROUP_ROOT) -> ContainerCgroup:
    """The cgroup the container process ``pid`` really lives in (read from ``/proc/<pid>/cgroup``).

    The platform names it ``<sessionId>.<generation>`` for a cold start and ``pool.<pid>`` for an agent that
    came from the warm pool, always below ``testbed/<instance>``; a process outside that tree is refused.
    """
    if mode not in ("cgroup-v1", "cgroup-v2"):
        raise LocalFaultError(
            f"Container limits are enforced with {mode!r} on this machine, not with cgroups (CONTAINER_LIMITS). "
            "Resource faults need a writable cgroup tree: run the platform as root with /sys/fs/cgroup writable."
        )
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError as error:
        raise LocalFaultError(f"Cannot read the cgroups of container pid {pid}: {error}") from None
    paths: dict[str, str] = {}
    for line in lines:
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") if controllers else [""]:
            paths[controller] = path
    wanted = ("memory", "cpu") if mode == "cgroup-v1" else ("", "")
    found = [paths.get(controller, "") for controller in wanted]
    prefix = f"/testbed/{instance}/"
    for controller, path in zip(wanted, found, strict=True):
        if not path.startswith(prefix):
            raise LocalFaultError(
                f"Container pid {pid} is not in a cgroup of platform instance {instance} "
                f"({controller or 'unified'} cgroup {path or 'none'}): the platform did not put it under {mode} limits."
            )
    if mode == "cgroup-v1":
        return ContainerCgroup(mode, root / "memory" / found[0].lstrip("/"), root / "cpu" / found[1].lstrip("/"))
    return ContainerCgroup(mode, root / found[0].lstrip("/"), root / found[0].lstrip("/"))


# ---------------------------------------------------------------------------------------------------- files
def read_optional(path: Path) -> str | None:
    try:
        return path.read_text()
    except FileNotFoundError:
        return None


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def restore_file(path: Path, previous: str | None) -> str:
    """Put back what a file held before a fault (``None``: it did not exist)."""
    if previous is None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return f"removed {path}"
    if not path.parent.is_dir():
        return f"{path.parent} is gone; nothing to restore"
    write_atomic(path, previous)
    return f"restored {path}"


# The ECS API's retryable common errors the platform's control plane answers with while it is "down".
CONTROL_PLANE_ERRORS = ("ServiceUnavailable", "ThrottlingException")
# A control plane the platform cannot reach at all: its calls time out connecting (testbed/controlplane.py).
CONTROL_PLANE_UNREACHABLE = "Unreachable"


def make_control_plane_unavailable(path: Path, error: str) -> None:
    """Write ``error`` into the platform's control-plane file: every ECS call of the platform fails with it (an ECS
    error code), or, for ``Unreachable``, after the platform's ECS connect timeout."""
    if error not in (*CONTROL_PLANE_ERRORS, CONTROL_PLANE_UNREACHABLE):
        raise LocalFaultError(
            f"Unknown ECS error {error!r}; the control plane answers with one of {', '.join(CONTROL_PLANE_ERRORS)} "
            f"or is {CONTROL_PLANE_UNREACHABLE}."
        )
    if not path.parent.is_dir():
        raise LocalFaultError(f"The platform's state folder {path.parent} does not exist: is the platform running?")
    write_atomic(path, f"{error}\n")


def write_cgroup_value(path: Path, value: str) -> str:
    """Write a cgroup control file; a cgroup that is gone (container replaced) needs no restoring."""
    try:
        path.write_text(value)
    except FileNotFoundError:
        return f"{path.parent} is gone (container replaced); nothing to restore"
    return f"wrote {value.strip()!r} to {path}"


def move_workspace_away(original: Path, moved: Path) -> None:
    if not original.is_dir():
        raise LocalFaultError(f"Workspace {original} does not exist; nothing to make unavailable.")
    moved.parent.mkdir(parents=True, exist_ok=True)
    os.rename(original, moved)


def move_workspace_back(original: Path, moved: Path) -> str:
    """Rename the workspace back; a folder recreated at the original place meanwhile is kept aside, never merged."""
    if not moved.exists():
        return f"{moved} is not there; {original} was already restored"
    note = ""
    if original.exists():
        try:
            original.rmdir()  # an empty folder something recreated: nothing lost
            note = f" (removed an empty folder recreated at {original})"
        except OSError:
            aside = original.with_name(f"{original.name}.recreated-{int(time.time())}")
            os.rename(original, aside)
            note = f" (a folder recreated at {original} while it was away was kept at {aside})"
    os.rename(moved, original)
    with contextlib.suppress(OSError):
        moved.parent.rmdir()
    return f"moved {moved} back to {original}{note}"


# ---------------------------------------------------------------------------------------------------- processes
def process_start_time(pid: int) -> float | None:
    """The process's start time in clock ticks since boot (from /proc), ``None`` when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return None
    fields = stat[stat.rfind(b")") + 2 :].split()
    if fields[0] == b"Z":
        return None
    return float(fields[19])


def alive(pid: int, start_time: float | None) -> bool:
    current = process_start_time(pid)
    return current is not None and (start_time is None or current == start_time)


class ExitWatch:
    """Notes the moment (``time.monotonic()``) a process ends: the origin of a recovery whose cause lags its fault.

    Memory pressure takes a while to fill a cgroup, so the OOM kill comes well after the injection; a recovery
    timed from the injection would include the allocation. The watch waits on a pidfd (Linux 5.3+), which becomes
    readable the instant the process exits, in a daemon thread; without pidfds it polls ``/proc`` every 5 ms.
    """

    def __init__(self, pid: int, start_time: float | None = None, lifetime: float = 600.0) -> None:
        self.pid = pid
        self.exited_at: float | None = None
        self.how = "pidfd"
        self._done = threading.Event()
        try:
            self._fd: int | None = os.pidfd_open(pid)
        except (AttributeError, OSError):
            self._fd, self.how = None, "polling /proc every 5 ms"
        if not alive(pid, start_time):
            self._exited()
            return
        self._thread = threading.Thread(target=self._wait, args=(start_time, lifetime), daemon=True)
        self._thread.start()

    def _exited(self) -> None:
        if self.exited_at is None:
            self.exited_at = time.monotonic()
        self._done.set()

    def _wait(self, start_time: float | None, lifetime: float) -> None:
        deadline = time.monotonic() + lifetime
        try:
            while not self._done.is_set() and time.monotonic() < deadline:
                if self._fd is not None:
                    readable, _, _ = select.select([self._fd], [], [], 0.5)
                    if readable:
                        self._exited()
                elif not alive(self.pid, start_time):
                    self._exited()
                else:
                    time.sleep(0.005)
        finally:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def wait(self, timeout: float) -> float | None:
        """The exit's monotonic time once it is known (``None`` when it is not within ``timeout``)."""
        self._done.wait(timeout)
        return self.exited_at

    def close(self) -> None:
        self._done.set()


def is_helper(pid: int, marker: str) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            command = handle.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    return HELPER_TITLE in command and f"--marker {marker}" in command


def kill_helper(pid: int, start_time: float | None, marker: str, timeout: float = 5.0) -> str:
    """SIGKILL a helper process, but only when the pid still names the helper that was started."""
    if not alive(pid, start_time) or not is_helper(pid, marker):
        return f"helper pid {pid} is already gone"
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while alive(pid, start_time) and time.monotonic() < deadline:
        time.sleep(0.01)
    if alive(pid, start_time):
        raise LocalFaultError(f"Helper pid {pid} did not die after SIGKILL within {timeout} s.")
    return f"killed helper pid {pid}"


def resume_process(pid: int, start_time: float | None) -> str:
    """SIGCONT a process a fault froze (SIGSTOP), but only when the pid still names the process that was frozen."""
    if not alive(pid, start_time):
        return f"frozen pid {pid} is gone"
    os.kill(pid, signal.SIGCONT)
    return f"pid {pid} resumed"


def helper_pids(marker: str | None = None) -> list[int]:
    """Live helper processes (optionally of one fault); used to prove nothing was left behind."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        wanted = HELPER_TITLE in command and (marker is None or f"--marker {marker}" in command)
        if wanted and process_start_time(int(entry.name)) is not None:
            found.append(int(entry.name))
    return found


def io_stress_file(folder: str | Path, marker: str) -> Path:
    """Where the io writer with ``marker`` writes: the revert removes it even when the writer was SIGKILLed."""
    return Path(folder) / f".io-stress-{marker}.bin"


def start_helper(kind: str, marker: str, cgroup_procs: list[Path], watch_pid: int, lifetime: float, **options):
    """Start a hog or burner that joins ``cgroup_procs`` and presses on the container ``watch_pid``.

    Returns ``(pid, start_time)`` once the helper has joined the cgroups, or raises with its error output.
    """
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        kind,
        "--marker",
        marker,
        "--watch-pid",
        str(watch_pid),
        "--lifetime",
        str(lifetime),
        "--title",
        HELPER_TITLE,
    ]
    for path in cgroup_procs:
        command += ["--cgroup-procs", str(path)]
    for key, value in options.items():
        command += [f"--{key.replace('_', '-')}", str(value)]
    proc = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=False
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().decode(errors="replace").strip()
    if line != "JOINED":
        proc.kill()
        _, err = proc.communicate(timeout=5)
        raise LocalFaultError(
            f"The {kind} helper could not join the container's cgroup: {line} {err.decode(errors='replace')[-500:]}"
        )
    proc.stdout.close()
    if proc.stderr:
        proc.stderr.close()
    return proc.pid, process_start_time(proc.pid), proc


# ---------------------------------------------------------------------------------------------------- helper main
def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: a SIGKILLed test run takes its helpers along


def _join(cgroup_procs: list[str], oom_protect: bool) -> None:
    if oom_protect:
        # Never the OOM killer's choice: -1000 needs CAP_SYS_RESOURCE; without it the hog stays a poor choice anyway,
        # because the memory it charges is unmapped shmem that does not count as its own (see the hog loop).
        with contextlib.suppress(OSError):
            Path("/proc/self/oom_score_adj").write_text("-1000")
    for path in cgroup_procs:
        Path(path).write_text(str(os.getpid()))


def _helper_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="local_faults")
    parser.add_argument("kind", choices=("hog", "burn", "io"))
    parser.add_argument("--marker", required=True)
    parser.add_argument("--title", default=HELPER_TITLE)
    parser.add_argument("--watch-pid", type=int, required=True)
    parser.add_argument("--lifetime", type=float, default=60.0)
    parser.add_argument("--cgroup-procs", action="append", default=[])
    parser.add_argument("--max-bytes", type=int, default=512 * 1024 * 1024)
    parser.add_argument("--step-bytes", type=int, default=8 * 1024 * 1024)
    parser.add_argument("--folder", default="", help="io: where the writer writes (the session's workspace)")
    args = parser.parse_args(argv)
    parent = os.getppid()
    _die_with_parent()
    if os.getppid() != parent:
        return 1  # the parent died before the death signal was armed
    watched = process_start_time(args.watch_pid)
    try:
        _join(args.cgroup_procs, oom_protect=args.kind == "hog")
    except OSError as error:
        print(f"ERROR {error}", flush=True)
        return 2
    print("JOINED", flush=True)
    deadline = time.monotonic() + args.lifetime
    total = 0

    def pressing() -> bool:
        return time.monotonic() < deadline and alive(args.watch_pid, watched)

    if args.kind == "hog":
        # The memory goes into an anonymous in-memory file: its pages are charged to the cgroup (and cannot be
        # reclaimed without swap) but are not mapped, so they do not count towards the hog's own OOM score. It is
        # freed the moment the hog exits, however it exits.
        memfd = os.memfd_create("chaos-hog")
        while pressing():
            if total < args.max_bytes:
                size = min(args.step_bytes, args.max_bytes - total)
                try:
                    os.posix_fallocate(memfd, total, size)
                except OSError:
                    time.sleep(0.02)  # the cgroup is full: the kernel is choosing whom to kill
                    continue
                total += size
            else:
                time.sleep(0.02)
    elif args.kind == "io":
        # fsynced 1 MiB writes into one file in the workspace, rewritten from the start past max-bytes: the disk the
        # workspace is on stays busy, the folder never fills. The file goes when the writer stops, however it stops.
        path = io_stress_file(args.folder or ".", args.marker)
        block = os.urandom(1024 * 1024)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            while pressing():
                if total >= args.max_bytes:
                    os.lseek(fd, 0, os.SEEK_SET)
                    total = 0
                total += os.write(fd, block)
                os.fsync(fd)
        finally:
            os.close(fd)
            path.unlink(missing_ok=True)
    else:
        while pressing():
            end = time.monotonic() + 0.05
            while time.monotonic() < end:
                pass
    return 0


if __name__ == "__main__":
    sys.exit(_helper_main(sys.argv[1:]))
