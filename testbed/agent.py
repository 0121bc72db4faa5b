"""Workspace agent: the process that is one session's container.

It serves HTTP on 127.0.0.1 (health, readiness, file operations on the session's workspace). A pre-started warm
agent waits unassigned until the platform hands it a session with ``POST /assign``. Once assigned, its process title
reads ``testbed-agent instance=<id> session=<sessionId> task=<taskId>`` so the process table tells which session it
serves. Protocol on stdout for the runtime that starts it: ``PORT <n>`` once listening, ``READY`` once initialised.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import stat
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import unquote

import setproctitle

from testbed import clock, httpcore
from testbed.httpcore import Request, Response, error_response, json_response

MAX_FILE_BYTES = 16 * 1024 * 1024


class PathRefused(ValueError):
    """A workspace path that is empty, absolute or escapes the workspace."""


class Workspace:
    """File operations confined to one folder, durable before they answer."""

    def __init__(self, root: Path, unsafe: bool = False) -> None:
        self.root = root
        self.unsafe = unsafe
        self.real_root = root.resolve()  # the platform never moves a mounted workspace
        self.real_root_text = str(self.real_root)

    def resolve(self, rel: str) -> Path:
        if not rel or rel.startswith("/") or "\x00" in rel:
            raise PathRefused(f"path {rel!r} must be relative and non-empty")
        if self.unsafe:
            return self.root / rel
        target = self._plain(rel)
        if target is not None:
            return target
        target = (self.root / rel).resolve()
        root = self.real_root
        if target != root and root not in target.parents:
            raise PathRefused(f"path {rel!r} escapes the workspace")
        if target == root:
            raise PathRefused("path names the workspace itself")
        return target

    def _plain(self, rel: str) -> Path | None:
        """The fast path of :meth:`resolve` for the common case: no ``.``/``..``/empty components and no symbolic
        link on the way. Such a path is its own real path below the (real) root, so it cannot escape; checking for
        links costs one ``lstat`` per existing component, instead of ``realpath`` over the whole absolute path.
        Anything else returns None and takes the full resolution."""
        parts = rel.split("/")
        if "" in parts or "." in parts or ".." in parts:
            return None
        path = self.real_root_text
        for part in parts:
            path = f"{path}/{part}"
            try:
                mode = os.lstat(path).st_mode
            except FileNotFoundError:
                break  # nothing below a missing component can be a link
            except OSError:
                return None
            if stat.S_ISLNK(mode):
                return None
        return Path(f"{self.real_root_text}/{rel}")

    def available(self) -> bool:
        return self.root.is_dir() and os.access(self.root, os.W_OK)

    def write(self, rel: str, data: bytes) -> int:
        target = self.resolve(rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return len(data)

    def read(self, rel: str) -> bytes:
        return self.resolve(rel).read_bytes()

    def delete(self, rel: str) -> None:
        self.resolve(rel).unlink()

    def listing(self) -> list[dict[str, object]]:
        files = []
        for path in sorted(self.root.rglob("*")):
            if path.is_file() and not path.name.endswith(".tmp"):
                files.append({"path": path.relative_to(self.root).as_posix(), "size": path.stat().st_size})
        return files


class AgentState:
    def __init__(self, instance: str, unsafe: bool, efs_fallback: bool = False) -> None:
        self.instance = instance
        self.unsafe = unsafe
        self.efs_fallback = efs_fallback  # the efs-silent-fallback defect
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
        self.workspace = Workspace(root, self.unsafe)
        self.session, self.task = session, task
        setproctitle.setproctitle(f"testbed-agent instance={self.instance} session={session} task={task}")


def _file_path(path: str) -> str | None:
    path = path.split("?", 1)[0]
    if path.startswith("/files/"):
        return unquote(path[len("/files/") :])
    return None


def _error(status: int, code: str, message: str) -> Response:
    return error_response(status, code, message)


def _raw(status: int, payload: bytes) -> Response:
    return Response(status, payload, "application/octet-stream")


def _too_large(length: int, limit: int) -> Response:
    return _error(400, "invalid_request", f"body of {length} bytes exceeds the {limit} byte limit")


class Agent:
    """The agent's HTTP handler. File operations run inline on the event loop: they are short (a PUT is two
    fsyncs) and one container serves one session."""

    def __init__(self, state: AgentState) -> None:
        self.state = state

    def handle(self, request: Request) -> Response:
        method = request.method
        if method == "GET":
            return self.get(request.target)
        if method == "PUT":
            return self.put(request.target, request.body)
        if method == "DELETE":
            return self.delete(request.target)
        if method == "POST":
            return self.post(request.target, request.body)
        return _error(501, "not_implemented", f"Unsupported method ({method!r})")

    def _workspace(self) -> Workspace | Response:
        ws = self.state.workspace
        if ws is None or not self.state.ready:
            return _error(503, "container_not_ready", "the container is not ready")
        if not ws.available():
            if self.state.efs_fallback:  # the defect: quietly write somewhere that is not EFS
                if self.state.fallback is None:
                    local = Path(tempfile.gettempdir()) / "testbed-efs-fallback" / self.state.session
                    local.mkdir(parents=True, exist_ok=True)
                    self.state.fallback = Workspace(local, self.state.unsafe)
                return self.state.fallback
            return _error(503, "workspace_unavailable", f"workspace {ws.root} is not mounted or not writable")
        return ws

    def get(self, path: str) -> Response:
        st = self.state
        if path == "/health":
            return json_response(
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
        if path == "/ready":
            return json_response(200 if st.ready else 503, {"ready": st.ready})
        if path.split("?", 1)[0] in ("/files", "/files/"):
            ws = self._workspace()
            if isinstance(ws, Response):
                return ws
            return json_response(200, {"files": ws.listing()})
        rel = _file_path(path)
        if rel is None:
            return _error(404, "not_found", f"no route {path}")
        ws = self._workspace()
        if isinstance(ws, Response):
            return ws
        try:
            return _raw(200, ws.read(rel))
        except PathRefused as exc:
            return _error(400, "invalid_path", str(exc))
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return _error(404, "file_not_found", f"no file {rel!r} in the workspace")

    def put(self, path: str, data: bytes) -> Response:
        rel = _file_path(path)
        if rel is None:
            return _error(404, "not_found", f"no route {path}")
        ws = self._workspace()
        if isinstance(ws, Response):
            return ws
        try:
            size = ws.write(rel, data)
        except PathRefused as exc:
            return _error(400, "invalid_path", str(exc))
        except (IsADirectoryError, NotADirectoryError) as exc:
            return _error(409, "path_conflict", str(exc))
        except OSError as exc:
            return _error(503, "workspace_unavailable", f"write failed: {exc.strerror}")
        return json_response(201, {"path": rel, "size": size})

    def delete(self, path: str) -> Response:
        rel = _file_path(path)
        if rel is None:
            return _error(404, "not_found", f"no route {path}")
        ws = self._workspace()
        if isinstance(ws, Response):
            return ws
        try:
            ws.delete(rel)
        except PathRefused as exc:
            return _error(400, "invalid_path", str(exc))
        except (FileNotFoundError, IsADirectoryError):
            return _error(404, "file_not_found", f"no file {rel!r} in the workspace")
        return json_response(204)

    def post(self, path: str, raw: bytes) -> Response:
        if path != "/assign":
            return _error(404, "not_found", f"no route {path}")
        try:
            body = json.loads(raw or b"{}")
            session, task, workspace = body["session"], body["task"], body["workspace"]
        except (ValueError, KeyError, TypeError):
            return _error(400, "invalid_request", "assign needs session, task and workspace")
        with self.state.lock:
            if self.state.session != "-":
                return _error(409, "already_assigned", f"agent serves {self.state.session}")
            self.state.assign(session, task, workspace)
        return json_response(200, {"session": session, "pid": os.getpid()})


def announce(line: str) -> None:
    """One protocol line on stdout in a single write. ``print`` writes the text and its newline separately when
    stdout is unbuffered (PYTHONUNBUFFERED), and the runtime closes the pipe once it has read ``READY``: the late
    newline then failed with EPIPE and the agent died with exit code 1 right after starting."""
    os.write(1, f"{line}\n".encode())


async def serve(state: AgentState, init_delay: float) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    server, config = await httpcore.start_server(
        Agent(state).handle, max_body=MAX_FILE_BYTES, too_large=_too_large, server_name="testbed-agent/1"
    )
    announce(f"PORT {server.sockets[0].getsockname()[1]}")
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), init_delay)  # the application's own start-up work, before ready
    state.ready = True
    with contextlib.suppress(BrokenPipeError):  # the runtime may close its end as soon as it has read READY
        announce("READY")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # the runtime stops reading stdout now; keep fd 1 valid
    await stop.wait()
    await httpcore.stop_server(server, config)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="testbed-agent")
    parser.add_argument("--instance", required=True)
    parser.add_argument("--session", default="-")
    parser.add_argument("--task", default="-")
    parser.add_argument("--workspace", default="")
    parser.add_argument("--init-delay", type=float, default=0.0)
    parser.add_argument("--unsafe-paths", action="store_true")
    parser.add_argument("--efs-silent-fallback", action="store_true")
    args = parser.parse_args(argv)

    state = AgentState(args.instance, args.unsafe_paths, args.efs_silent_fallback)
    setproctitle.setproctitle(f"testbed-agent instance={args.instance} session=- task=-")
    if args.session != "-":
        state.assign(args.session, args.task, args.workspace)
    asyncio.run(serve(state, args.init_delay))
    return 0


if __name__ == "__main__":
    sys.exit(main())
