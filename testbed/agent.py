"""Workspace agent: the process that is one session's container.

It serves HTTP on 127.0.0.1 (health, readiness, file operations on the session's workspace). A pre-started warm
agent waits unassigned until the platform hands it a session with ``POST /assign``. Once assigned, its process title
reads ``testbed-agent instance=<id> session=<sessionId> task=<taskId>`` so the process table tells which session it
serves. Protocol on stdout for the runtime that starts it: ``PORT <n>`` once listening, ``READY`` once initialised.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import signal
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import setproctitle

from testbed import clock
from testbed.httputil import SWITCH_INTERVAL_S, send_with_body

MAX_FILE_BYTES = 16 * 1024 * 1024
# Defect switches that act inside a container (testbed/config.py); read from the platform's settings file.
CONTAINER_DEFECTS = (
    "overwrite-keeps-tail",
    "stale-read-cache",
    "binary-mangled",
    "path-escapes-to-client-folder",
    "scale-out-busy-wait",
    "workspace-io-blocked-while-starting",
)
BUSY_WAIT_SECONDS = 10.0  # the defect scale-out-busy-wait: how long a new container spins after it is ready
PROVISIONING_LOCK = "efs-provisioning.lock"  # the defect workspace-io-blocked-while-starting: in the state folder


def provisioning_lock_path() -> str:
    """The lock a starting container's workspace provisioning holds (defect workspace-io-blocked-while-starting)."""
    return os.path.join(os.environ.get("TESTBED_STATE_DIR", "") or tempfile.gettempdir(), PROVISIONING_LOCK)


def container_defects() -> frozenset[str]:
    """The defects of CONTAINER_DEFECTS the platform runs with: every container inherits ``TESTBED_STATE_DIR``, whose
    ``settings.json`` names them, so no new command-line flag (and no runtime change) is needed per defect."""
    state = os.environ.get("TESTBED_STATE_DIR", "")
    try:
        defects = json.loads((Path(state) / "settings.json").read_text()).get("defects", []) if state else []
    except (OSError, ValueError):
        defects = []
    return frozenset(d for d in defects if d in CONTAINER_DEFECTS)


# Performance defects (testbed/config.py DEFECTS), sized against the local profile's SLAs.
SLOW_FILE_OP_S = 0.25  # slow-file-ops: the local file-operation bound is p95 < 50 ms
HOG_BUSY_S, HOG_IDLE_S = 0.08, 0.02  # cpu-hog: 80 % of one core, in 100 ms cycles
HOG_BLOCK = b"\xa5" * (256 * 1024)  # hashed by the hog: hashlib releases the GIL, so requests are still served
CACHE_STEP_BYTES = 2 * 1024 * 1024  # memory-hog: what the file cache keeps per file operation
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


def resident_bytes() -> int:
    """This process's resident memory (what the memory limit and the utilisation sampler count)."""
    with open("/proc/self/statm", "rb") as handle:
        return int(handle.read().split()[1]) * PAGE_BYTES


def burn_cpu(stop: threading.Event) -> None:
    """The defect cpu-hog: a runaway checksum loop, busy 80 % of the time, at the lowest priority.

    Niced so that it takes the CPU nobody else wants (it shows in the utilisation figures, which is the point)
    without starving the platform's own work on a shared machine."""
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    while not stop.is_set():
        until = time.monotonic() + HOG_BUSY_S
        while time.monotonic() < until:
            hashlib.sha256(HOG_BLOCK).digest()
        stop.wait(HOG_IDLE_S)


class PathRefused(ValueError):
    """A workspace path that is empty, absolute or escapes the workspace."""


class Workspace:
    """File operations confined to one folder, durable before they answer.

    Paths are handled as strings with ``os.path`` rather than ``pathlib``: every file operation resolves its path,
    and on the hot path pathlib's object churn costs more than the syscalls themselves.
    """

    def __init__(self, root: Path, unsafe: bool = False, defects: frozenset[str] = frozenset()) -> None:
        self.root = root
        self.unsafe = unsafe
        self.defects = defects
        self.real_root = os.path.realpath(root)  # resolved once: the root does not move under a running agent
        # The defect path-escapes-to-client-folder fences paths at the client folder, one level up.
        self.fence = os.path.dirname(self.real_root) if "path-escapes-to-client-folder" in defects else self.real_root
        self.read_cache: dict[str, bytes] = {}  # the defect stale-read-cache

    def resolve(self, rel: str) -> str:
        if not rel or rel.startswith("/") or "\x00" in rel:
            raise PathRefused(f"path {rel!r} must be relative and non-empty")
        if self.unsafe:
            return os.path.join(self.root, rel)
        target = os.path.realpath(os.path.join(self.real_root, rel))
        if target == self.real_root:
            raise PathRefused("path names the workspace itself")
        if not target.startswith(self.fence + os.sep):
            raise PathRefused(f"path {rel!r} escapes the workspace")
        return target

    def available(self) -> bool:
        return os.access(self.root, os.W_OK) and os.path.isdir(self.root)

    def _wait_for_provisioning(self) -> None:
        """The defect workspace-io-blocked-while-starting: every file operation waits while any container's
        workspace is being provisioned (a shared lock on the file system against the starts' exclusive one)."""
        if "workspace-io-blocked-while-starting" not in self.defects:
            return
        fd = os.open(provisioning_lock_path(), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def write(self, rel: str, data: bytes) -> int:
        target = self.resolve(rel)
        self._wait_for_provisioning()
        if "binary-mangled" in self.defects:  # the defect: the bytes take a trip through text
            data = data.decode("utf-8", errors="replace").encode("utf-8")
        if "overwrite-keeps-tail" in self.defects and os.path.isfile(target):  # the defect: no truncation
            with open(target, "r+b") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            return len(data)
        parent, name = os.path.split(target)
        tmp = os.path.join(parent, f".{name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        except FileNotFoundError:  # first file in a new folder
            os.makedirs(parent, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
        dir_fd = os.open(parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the rename itself survives a crash
        finally:
            os.close(dir_fd)
        return len(data)

    def read(self, rel: str) -> bytes:
        target = self.resolve(rel)
        self._wait_for_provisioning()
        if "stale-read-cache" in self.defects and target in self.read_cache:  # the defect: the first version read
            return self.read_cache[target]
        with open(target, "rb") as handle:
            data = handle.read()
        if "stale-read-cache" in self.defects:
            self.read_cache[target] = data
        return data

    def delete(self, rel: str) -> None:
        os.unlink(self.resolve(rel))

    def listing(self) -> list[dict[str, object]]:
        files = []
        for path in sorted(self.root.rglob("*")):
            if path.is_file() and not path.name.endswith(".tmp"):
                files.append({"path": path.relative_to(self.root).as_posix(), "size": path.stat().st_size})
        return files


class AgentState:
    def __init__(
        self,
        instance: str,
        unsafe: bool,
        efs_fallback: bool = False,
        slow_file_ops: bool = False,
        cpu_hog: bool = False,
        memory_hog: int = 0,
    ) -> None:
        self.instance = instance
        self.unsafe = unsafe
        self.defects = container_defects()
        self.efs_fallback = efs_fallback  # the efs-silent-fallback defect
        self.slow_file_ops = slow_file_ops  # the slow-file-ops defect
        self.cpu_hog = cpu_hog  # the cpu-hog defect
        self.memory_hog = memory_hog  # the memory-hog defect: resident bytes the file cache grows the process to
        self.cache: list[bytes] = []
        self.cache_lock = threading.Lock()  # one growth step at a time: concurrent requests never overshoot
        self.stopping = threading.Event()
        self.fallback: Workspace | None = None
        self.session = "-"
        self.task = "-"
        self.workspace: Workspace | None = None
        self.ready = False
        self.started = time.monotonic()
        self.lock = threading.Lock()

    def assign(self, session: str, task: str, workspace: str) -> None:
        root = Path(workspace)
        root.mkdir(parents=True, exist_ok=True)
        self.workspace = Workspace(root, self.unsafe, self.defects)
        self.session, self.task = session, task
        setproctitle.setproctitle(f"testbed-agent instance={self.instance} session={session} task={task}")
        if "scale-out-busy-wait" in self.defects:  # the defect: a session's new container polls without sleeping
            deadline = time.monotonic() + BUSY_WAIT_SECONDS
            threading.Thread(target=_spin_until, args=(deadline,), name="busy-wait", daemon=True).start()
        if self.cpu_hog:  # a session's container only: the warm pool's idle agents stay idle
            threading.Thread(target=burn_cpu, args=(self.stopping,), name="checksum", daemon=True).start()

    def file_operation(self) -> None:
        """What the performance defects do on each file GET or PUT (nothing on a clean platform)."""
        if self.memory_hog:
            with self.cache_lock:
                if resident_bytes() + CACHE_STEP_BYTES <= self.memory_hog:
                    self.cache.append(b"\x5a" * CACHE_STEP_BYTES)  # a cache sized to the limit: never evicted
        if self.slow_file_ops:
            time.sleep(SLOW_FILE_OP_S)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state: AgentState
    disable_nagle_algorithm = True  # a response is one write; no need to wait for an ACK before it goes

    def log_message(self, format: str, *args: object) -> None:
        return

    def _send(self, status: int, body: object = None, raw: bytes | None = None) -> None:
        payload = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream" if raw is not None else "application/json")
        self.send_header("Content-Length", str(len(payload)))
        send_with_body(self, payload)

    def _error(self, status: int, code: str, message: str) -> None:
        self._send(status, {"error": code, "message": message})

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_FILE_BYTES:
            raise PathRefused(f"body of {length} bytes exceeds the {MAX_FILE_BYTES} byte limit")
        return self.rfile.read(length) if length else b""

    def _file_path(self) -> str | None:
        path = self.path.split("?", 1)[0]
        if path.startswith("/files/"):
            return unquote(path[len("/files/") :])
        return None

    def _workspace(self) -> Workspace | None:
        ws = self.state.workspace
        if ws is None or not self.state.ready:
            self._error(503, "container_not_ready", "the container is not ready")
            return None
        if not ws.available():
            if self.state.efs_fallback:  # the defect: quietly write somewhere that is not EFS
                if self.state.fallback is None:
                    local = Path(tempfile.gettempdir()) / "testbed-efs-fallback" / self.state.session
                    local.mkdir(parents=True, exist_ok=True)
                    self.state.fallback = Workspace(local, self.state.unsafe)
                return self.state.fallback
            self._error(503, "workspace_unavailable", f"workspace {ws.root} is not mounted or not writable")
            return None
        return ws

    def do_GET(self) -> None:
        st = self.state
        if self.path == "/health":
            self._send(
                200,
                {
                    "status": "ok",
                    "ready": st.ready,
                    "session": st.session,
                    "task": st.task,
                    "pid": os.getpid(),
                    "time": clock.now(),
                },
            )
        elif self.path == "/ready":
            self._send(200 if st.ready else 503, {"ready": st.ready})
        elif self.path.split("?", 1)[0] in ("/files", "/files/"):
            ws = self._workspace()
            if ws:
                self._send(200, {"files": ws.listing()})
        elif (rel := self._file_path()) is not None:
            ws = self._workspace()
            if ws:
                st.file_operation()
                try:
                    self._send(200, raw=ws.read(rel))
                except PathRefused as exc:
                    self._error(400, "invalid_path", str(exc))
                except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                    self._error(404, "file_not_found", f"no file {rel!r} in the workspace")
        else:
            self._error(404, "not_found", f"no route {self.path}")

    def do_PUT(self) -> None:
        rel = self._file_path()
        if rel is None:
            self._error(404, "not_found", f"no route {self.path}")
            return
        try:
            data = self._body()
        except (PathRefused, ValueError) as exc:
            self._error(400, "invalid_request", str(exc))
            return
        ws = self._workspace()
        if ws:
            self.state.file_operation()
            try:
                size = ws.write(rel, data)
                self._send(201, {"path": rel, "size": size})
            except PathRefused as exc:
                self._error(400, "invalid_path", str(exc))
            except (IsADirectoryError, NotADirectoryError) as exc:
                self._error(409, "path_conflict", str(exc))
            except OSError as exc:
                self._error(503, "workspace_unavailable", f"write failed: {exc.strerror}")

    def do_DELETE(self) -> None:
        rel = self._file_path()
        if rel is None:
            self._error(404, "not_found", f"no route {self.path}")
            return
        ws = self._workspace()
        if ws:
            try:
                ws.delete(rel)
                self._send(204)
            except PathRefused as exc:
                self._error(400, "invalid_path", str(exc))
            except (FileNotFoundError, IsADirectoryError):
                self._error(404, "file_not_found", f"no file {rel!r} in the workspace")

    def do_POST(self) -> None:
        if self.path != "/assign":
            self._error(404, "not_found", f"no route {self.path}")
            return
        try:
            body = json.loads(self._body() or b"{}")
            session, task, workspace = body["session"], body["task"], body["workspace"]
        except (ValueError, KeyError, TypeError):
            self._error(400, "invalid_request", "assign needs session, task and workspace")
            return
        with self.state.lock:
            if self.state.session != "-":
                self._error(409, "already_assigned", f"agent serves {self.state.session}")
                return
            self.state.assign(session, task, workspace)
        self._send(200, {"session": session, "pid": os.getpid()})


def _spin_until(deadline: float) -> None:
    """The defect scale-out-busy-wait: a readiness poll that never sleeps, a core's worth of CPU while it lasts."""
    while time.monotonic() < deadline:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="testbed-agent")
    parser.add_argument("--instance", required=True)
    parser.add_argument("--session", default="-")
    parser.add_argument("--task", default="-")
    parser.add_argument("--workspace", default="")
    parser.add_argument("--init-delay", type=float, default=0.0)
    parser.add_argument("--unsafe-paths", action="store_true")
    parser.add_argument("--efs-silent-fallback", action="store_true")
    parser.add_argument("--slow-file-ops", action="store_true")
    parser.add_argument("--cpu-hog", action="store_true")
    parser.add_argument("--memory-hog", type=int, default=0, help="bytes the file cache grows the process to")
    args = parser.parse_args(argv)
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    # A container's clock: the platform host's skew plus the containers' own (testbed/clock.py).
    clock.set_skew_file(os.environ.get("TESTBED_CLOCK_FILE", ""), os.environ.get("TESTBED_CONTAINER_CLOCK_FILE", ""))

    state = AgentState(
        args.instance, args.unsafe_paths, args.efs_silent_fallback, args.slow_file_ops, args.cpu_hog, args.memory_hog
    )
    setproctitle.setproctitle(f"testbed-agent instance={args.instance} session=- task=-")
    if args.session != "-":
        state.assign(args.session, args.task, args.workspace)
    handler = type("BoundHandler", (Handler,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"PORT {server.server_address[1]}", flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    stop.wait(args.init_delay)  # the application's own start-up work, before it reports ready
    state.ready = True
    print("READY", flush=True)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # the runtime stops reading stdout now; keep fd 1 valid
    stop.wait()
    state.stopping.set()
    # Exit at once on SIGTERM, as a container's main process does: server.shutdown() would first wait out
    # serve_forever's 0.5 s poll, which made every stop (idle shutdown, delete) half a second slower.
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
