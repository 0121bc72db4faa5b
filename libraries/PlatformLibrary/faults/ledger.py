"""The fault ledger: every injected fault is written down before it is applied, and crossed out once reverted.

The ledger is one JSON file (``<dir>/active.json``, default ``results/faults``) shared by every process on the
machine: writes are atomic (temporary file + rename) under an ``flock``, so pabot workers never lose each other's
entries. Each entry says who injected it (pid and start time of the test process, run id, suite, test) and how to
undo it, step by step, without the process that injected it:

| step ``do`` | what reverting does |
| ``delete-toxic`` | ``DELETE /proxies/<hop>/toxics/<toxic>`` on the fault proxy (gone already: fine) |
| ``enable-hop`` | ``POST /proxies/<hop>`` ``{"enabled": true}`` |
| ``restore-file`` | puts back a file's earlier content, or removes it (the clock-skew and control-plane files) |
| ``restore-cgroup`` | writes the old value back into a cgroup control file (a removed cgroup needs nothing) |
| ``kill-helper`` | SIGKILLs a hog or burner process, checked by pid, start time and marker |
| ``move-back`` | renames a workspace folder back to where it belongs |
| ``platform-down`` | ``python -m testbed down --state <dir>`` (a private chaos platform) |

A test process reverts its own entries (``Revert All Faults``); a new run reverts the entries of processes that are
no longer alive (``Revert Faults Left By An Earlier Run``), which is what makes a SIGKILLed run safe.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

from ..core.profile import counted
from ..targets.embedded import faults as local_faults
from .toxiproxy import FaultProxyError, FaultProxyGone, ToxiproxyClient

PROJECT_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_DIR = PROJECT_ROOT / "results" / "faults"
FILE_NAME = "active.json"

# Last moment (time.monotonic) a fault was reverted in this process: recovery times count from there.
_last_revert: dict[str, float] = {}
# How often each toxic acted, read just before it was deleted (toxic name -> hits), and the toxic faults this
# process reverted with their hits: a test proves its faults fired (`reverted_toxics`).
_toxic_hits: dict[str, int] = {}
_reverted_toxics: list[dict[str, Any]] = []


class FaultRevertError(AssertionError):
    ROBOT_SUPPRESS_NAME = True


class ChaosError(AssertionError):
    """A chaos keyword could not do what it was asked (no fault proxy, no cgroup, no such fault ...)."""

    ROBOT_SUPPRESS_NAME = True


def me() -> dict[str, Any]:
    """Identity of this process: pid and start time, so a recycled pid is never mistaken for the owner."""
    return {"pid": os.getpid(), "createTime": psutil.Process().create_time()}


def owner_alive(owner: dict[str, Any]) -> bool:
    try:
        return abs(psutil.Process(int(owner["pid"])).create_time() - float(owner["createTime"])) < 0.01
    except (psutil.NoSuchProcess, psutil.ZombieProcess, KeyError, TypeError, ValueError):
        return False


def is_mine(owner: dict[str, Any]) -> bool:
    return owner.get("pid") == os.getpid() and owner_alive(owner)


def mark_revert() -> None:
    _last_revert["at"] = time.monotonic()


def last_revert() -> float | None:
    return _last_revert.get("at")


def toxic_hits(toxic: dict[str, Any]) -> int:
    """How often a toxic acted: requests it faulted for ``aws_fault``, else chunks or connections it handled."""
    if toxic.get("type") == "aws_fault":
        return int((toxic.get("attributes") or {}).get("hits", 0))
    return int(toxic.get("hits", 0))


def reverted_toxics(since: float) -> list[dict[str, Any]]:
    """Toxic faults this process reverted since ``since`` (time.monotonic), each with ``hits`` (None: unknown)."""
    return [r for r in _reverted_toxics if r["at"] >= since]


class FaultLedger:
    """Read-modify-write access to ``active.json`` under an exclusive ``flock``."""

    _sequence = 0
    _sequence_lock = threading.Lock()

    def __init__(self, directory: Path | str | None = None):
        self.directory = Path(directory or DEFAULT_DIR).expanduser().resolve()

    @property
    def file(self) -> Path:
        return self.directory / FILE_NAME

    @contextlib.contextmanager
    def _locked(self) -> Iterator[list[dict[str, Any]]]:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.directory / f".{FILE_NAME}.lock", os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            entries = self._read()
            before = json.dumps(entries, sort_keys=True)
            yield entries
            if json.dumps(entries, sort_keys=True) != before:
                self._write(entries)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _read(self) -> list[dict[str, Any]]:
        try:
            data = json.loads(self.file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except ValueError as error:
            raise FaultRevertError(f"The fault ledger {self.file} is not valid JSON: {error}") from None
        faults = data.get("faults") if isinstance(data, dict) else None
        return list(faults) if isinstance(faults, list) else []

    def _write(self, entries: list[dict[str, Any]]) -> None:
        tmp = self.file.with_name(f".{FILE_NAME}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"version": 1, "faults": entries}, indent=2), encoding="utf-8")
        os.replace(tmp, self.file)

    def entries(self) -> list[dict[str, Any]]:
        with self._locked() as entries:
            return [dict(e) for e in entries]

    @classmethod
    def new_id(cls, run_id: str) -> str:
        with cls._sequence_lock:
            cls._sequence += 1
            sequence = cls._sequence
        return f"f-{run_id}-{os.getpid()}-{sequence}-{secrets.token_hex(2)}"

    def record(
        self,
        kind: str,
        description: str,
        undo: list[dict[str, Any]],
        run_id: str,
        suite: str | None = None,
        test: str | None = None,
        platform: str | None = None,
    ) -> dict[str, Any]:
        """Write a fault down *before* it is applied, so even a half-applied fault gets reverted."""
        entry = {
            "id": self.new_id(run_id),
            "kind": kind,
            "description": description,
            "state": "injecting",
            "owner": {**me(), "run": run_id, "suite": suite, "test": test},
            "platform": platform,
            "createdAt": time.time(),
            "undo": undo,
        }
        with self._locked() as entries:
            entries.append(entry)
        return entry

    def update(self, fault_id: str, **changes: Any) -> dict[str, Any]:
        with self._locked() as entries:
            for entry in entries:
                if entry["id"] == fault_id:
                    entry.update(changes)
                    return dict(entry)
        raise KeyError(fault_id)

    def get(self, fault_id: str) -> dict[str, Any] | None:
        for entry in self.entries():
            if entry["id"] == fault_id:
                return entry
        return None

    def remove(self, fault_id: str) -> None:
        with self._locked() as entries:
            entries[:] = [e for e in entries if e["id"] != fault_id]

    def mine(self) -> list[dict[str, Any]]:
        return [e for e in self.entries() if is_mine(e.get("owner", {}))]

    def abandoned(self) -> list[dict[str, Any]]:
        """Entries whose owner process is gone (killed, crashed) or is this very process."""
        return [e for e in self.entries() if not owner_alive(e.get("owner", {})) or is_mine(e.get("owner", {}))]


# ---------------------------------------------------------------------------------------------------- reverting
def _proxy(step: dict[str, Any], timeout: float) -> ToxiproxyClient:
    return ToxiproxyClient(step["proxy"], timeout)


def _proxy_undo(undo) -> str:
    try:
        return undo()
    except FaultProxyGone:
        return "the fault proxy is gone (platform stopped), and the fault with it"
    except FaultProxyError as error:
        raise FaultRevertError(str(error)) from None


def _stop_fis_experiment(step: dict[str, Any]) -> str:
    """Stop a FIS experiment a fault started (on AWS, or the emulated deployment the step names).

    The step carries what a later process needs to reach FIS without the profile (a killed run's leftovers are
    reverted by the next run): region, endpoint (empty on AWS), and whether the endpoint takes dummy credentials.
    """
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    kwargs: dict[str, Any] = {"region_name": step["region"]}
    if step.get("endpoint"):
        kwargs["endpoint_url"] = step["endpoint"]
    if step.get("dummyCredentials"):
        kwargs.update(aws_access_key_id="testing", aws_secret_access_key="testing")
    session = boto3.Session(profile_name=step.get("profile") or None) if step.get("profile") else boto3
    client = session.client("fis", **kwargs)
    experiment = step["experiment"]
    try:
        state = client.get_experiment(id=experiment)["experiment"]["state"]["status"]
        if state in ("completed", "stopped", "failed", "cancelled"):
            return f"FIS experiment {experiment} had already ended ({state})"
        client.stop_experiment(id=experiment)
    except (BotoCoreError, ClientError) as error:
        raise FaultRevertError(f"Stopping FIS experiment {experiment} failed: {error}") from None
    return f"FIS experiment {experiment} stopped"


def undo_step(step: dict[str, Any], timeout: float = 5.0) -> str:
    """Carry out one revert step; returns what was done, raises ``FaultRevertError`` when it could not be done."""
    action = step.get("do")
    try:
        if action == "delete-toxic":
            proxy = _proxy(step, timeout)
            with contextlib.suppress(FaultProxyError):  # gone already: its hits are unknown, the delete says why
                _toxic_hits[step["toxic"]] = toxic_hits(proxy.toxic(step["hop"], step["toxic"]))
            result = _proxy_undo(lambda: proxy.delete_toxic(step["hop"], step["toxic"]))
            hits = _toxic_hits.get(step["toxic"])
            met = "? hits" if hits is None else counted(hits, "hit")
            return f"toxic {step['toxic']} on hop {step['hop']} ({met}): {result}"
        if action == "enable-hop":
            proxy = _proxy(step, timeout)
            result = _proxy_undo(lambda: proxy.enable_hop_if_present(step["hop"]))
            return f"hop {step['hop']} enabled: {result}"
        if action == "restore-file":
            return local_faults.restore_file(Path(step["path"]), step.get("previous"))
        if action == "restore-cgroup":
            return local_faults.write_cgroup_value(Path(step["path"]), str(step["previous"]))
        if action == "kill-helper":
            if step.get("pid") is None:
                pids = local_faults.helper_pids(step["marker"])
                return "; ".join(local_faults.kill_helper(p, None, step["marker"]) for p in pids) or "no helper ran"
            return local_faults.kill_helper(int(step["pid"]), step.get("startTime"), step["marker"])
        if action == "resume-process":
            return local_faults.resume_process(int(step["pid"]), step.get("startTime"))
        if action == "move-back":
            return local_faults.move_workspace_back(Path(step["original"]), Path(step["moved"]))
        if action == "stop-fis-experiment":
            return _stop_fis_experiment(step)
        if action == "platform-down":
            completed = subprocess.run(
                [sys.executable, "-m", "testbed", "down", "--state", step["state"]],
                cwd=PROJECT_ROOT,
                capture_output=True,
                text=True,
                timeout=max(30.0, timeout),
                stdin=subprocess.DEVNULL,
                check=False,
            )
            if completed.returncode != 0:
                raise FaultRevertError(f"testbed down --state {step['state']} failed: {completed.stderr.strip()}")
            return completed.stdout.strip() or f"platform at {step['state']} stopped"
    except (OSError, KeyError, subprocess.TimeoutExpired) as error:
        raise FaultRevertError(f"Revert step {action} failed: {error}") from None
    raise FaultRevertError(f"Unknown revert step {action!r} in the fault ledger.")


def revert_entry(ledger: FaultLedger, entry: dict[str, Any], timeout: float = 5.0) -> list[str]:
    """Undo every step of ``entry`` (last applied, first undone) and cross it out; raises when a step failed."""
    done, problems = [], []
    for step in reversed(entry.get("undo", [])):
        try:
            done.append(undo_step(step, timeout))
        except FaultRevertError as error:
            problems.append(str(error))
    mark_revert()
    for step in entry.get("undo", []):
        if step.get("do") == "delete-toxic":
            _reverted_toxics.append(
                {
                    "at": time.monotonic(),
                    "id": entry["id"],
                    "description": entry.get("description"),
                    "hits": _toxic_hits.pop(step["toxic"], None),
                }
            )
    if problems:
        raise FaultRevertError(
            f"Fault {entry['id']} ({entry.get('description')}) not fully reverted: " + "; ".join(problems)
        )
    ledger.remove(entry["id"])
    return done


def revert_entries(
    ledger: FaultLedger, entries: list[dict[str, Any]], timeout: float = 5.0
) -> tuple[list[str], list[str]]:
    """Revert ``entries`` (platforms last, so faults inside them are undone first); returns (done, problems)."""
    ordered = sorted(entries, key=lambda e: (e.get("kind") == "private-platform", -float(e.get("createdAt", 0))))
    done, problems = [], []
    for entry in ordered:
        try:
            steps = revert_entry(ledger, entry, timeout)
            done.append(f"{entry['id']} {entry.get('kind')} ({entry.get('description')}): " + "; ".join(steps))
        except FaultRevertError as error:
            problems.append(str(error))
    return done, problems
