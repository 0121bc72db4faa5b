"""Per-container memory and CPU limits: cgroups where the OS lets us, an address-space rlimit otherwise.

cgroup v1 (separate ``memory`` and ``cpu`` hierarchies) and v2 (unified) are both handled when running as root.
Without a writable cgroup tree, memory is capped with ``RLIMIT_AS`` (a looser cap: it counts virtual memory) and
CPU is not limited; :attr:`Limits.mode` says which applies so the platform can report it.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import psutil

ROOT = Path("/sys/fs/cgroup")


class Limits:
    """Creates one cgroup per container under ``testbed/<instance>`` and removes them all at the end."""

    def __init__(self, instance: str, memory_bytes: int, cpu_cores: float, root: Path = ROOT) -> None:
        self.instance = instance
        self.memory_bytes = memory_bytes
        self.cpu_cores = cpu_cores
        self.root = root
        self.mode = self._detect()

    def _detect(self) -> str:
        if os.geteuid() != 0:
            return "rlimit"
        if (self.root / "memory" / "cgroup.procs").exists() and os.access(self.root / "memory", os.W_OK):
            return "cgroup-v1"
        if (self.root / "cgroup.controllers").exists() and os.access(self.root, os.W_OK):
            return "cgroup-v2"
        return "rlimit"

    def _dirs(self, name: str) -> list[Path]:
        base = Path("testbed") / self.instance / name
        if self.mode == "cgroup-v1":
            return [self.root / "memory" / base, self.root / "cpu" / base]
        if self.mode == "cgroup-v2":
            return [self.root / base]
        return []

    def apply(self, name: str, pid: int) -> str:
        """Put ``pid`` under the limits; return the mode used (falls back to rlimit on any cgroup error)."""
        try:
            if self.mode == "cgroup-v1":
                mem, cpu = self._dirs(name)
                mem.mkdir(parents=True, exist_ok=True)
                cpu.mkdir(parents=True, exist_ok=True)
                if self.memory_bytes > 0:
                    (mem / "memory.limit_in_bytes").write_text(str(self.memory_bytes))
                    with contextlib.suppress(OSError):  # no swap accounting on some kernels
                        (mem / "memory.memsw.limit_in_bytes").write_text(str(self.memory_bytes))
                period = int((cpu / "cpu.cfs_period_us").read_text())
                (cpu / "cpu.cfs_quota_us").write_text(str(int(period * self.cpu_cores)))
                (mem / "cgroup.procs").write_text(str(pid))
                (cpu / "cgroup.procs").write_text(str(pid))
                return self.mode
            if self.mode == "cgroup-v2":
                (group,) = self._dirs(name)
                parent = group.parent
                parent.mkdir(parents=True, exist_ok=True)
                for level in (self.root, self.root / "testbed", parent):
                    with contextlib.suppress(OSError):
                        (level / "cgroup.subtree_control").write_text("+memory +cpu")
                group.mkdir(exist_ok=True)
                if self.memory_bytes > 0:
                    (group / "memory.max").write_text(str(self.memory_bytes))
                (group / "cpu.max").write_text(f"{int(100000 * self.cpu_cores)} 100000")
                (group / "cgroup.procs").write_text(str(pid))
                return self.mode
        except OSError:
            pass
        with contextlib.suppress(psutil.Error):
            if self.memory_bytes <= 0:
                return "none"
            cap = self.memory_bytes * 4  # address space, not resident memory: threads reserve stacks
            psutil.Process(pid).rlimit(psutil.RLIMIT_AS, (cap, cap))
        return "rlimit"

    def oom_killed(self, name: str) -> bool:
        """True when the kernel's OOM killer fired inside this container's cgroup."""
        for directory in self._dirs(name)[:1]:
            for filename in ("memory.oom_control", "memory.events"):
                with contextlib.suppress(OSError):
                    for line in (directory / filename).read_text().splitlines():
                        key, _, value = line.partition(" ")
                        if key == "oom_kill" and int(value) > 0:
                            return True
        return False

    def remove(self, name: str) -> None:
        for directory in self._dirs(name):
            with contextlib.suppress(OSError):
                directory.rmdir()

    def remove_all(self) -> None:
        for hierarchy in ("memory", "cpu", ""):
            base = self.root / hierarchy / "testbed" / self.instance if hierarchy else None
            if base is None:
                base = self.root / "testbed" / self.instance
            if base.is_dir():
                for child in base.iterdir():
                    if child.is_dir():
                        with contextlib.suppress(OSError):
                            child.rmdir()
                with contextlib.suppress(OSError):
                    base.rmdir()
