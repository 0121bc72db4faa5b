"""Lifecycle of the embedded platform (``python -m testbed``) for suites that run on the local profile.

`Ensure Platform Is Running` starts a platform only when none answers, and writes a marker saying which
suite started it; `Stop Embedded Platform If Started By Suite` stops it only in that suite, so a platform a
person started by hand, or one another suite owns, is never stopped behind their back.

Every suite that uses the shared platform registers itself in ``<state>/users/``. When the suite that started it
ends while suites of the same run still use it (``pabot suites/recovery``, without the top-level suite that
normally owns the platform), it hands the platform over instead of stopping it, and the last of those suites
stops it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import psutil
import requests
from robot.api.deco import keyword
from robot.libraries.BuiltIn import BuiltIn, RobotNotRunningError

from ...core.base import LibraryComponent, LibraryContext
from ...core.profile import format_seconds
from ...core.waiting import wait_until
from ...sessions.api import PlatformApiKeywords

MARKER_NAME = "started-by-suite.json"


class PlatformStartError(RuntimeError):
    ROBOT_SUPPRESS_NAME = True


def _process_identity(pid: int) -> dict | None:
    try:
        return {"pid": pid, "createTime": psutil.Process(pid).create_time()}
    except psutil.NoSuchProcess:
        return None


def _identity_alive(identity: dict | None) -> bool:
    if not identity:
        return False
    try:
        return abs(psutil.Process(int(identity["pid"])).create_time() - float(identity["createTime"])) < 0.01
    except (psutil.NoSuchProcess, KeyError, TypeError, ValueError):
        return False


class EmbeddedPlatformKeywords(LibraryComponent):
    """Start, stop and check the embedded platform."""

    def __init__(self, ctx: LibraryContext, api: PlatformApiKeywords):
        super().__init__(ctx)
        self.api = api

    @property
    def state_dir(self) -> Path:
        return self.ctx.endpoints.state_dir

    @property
    def marker(self) -> Path:
        return self.state_dir / MARKER_NAME

    @property
    def users_dir(self) -> Path:
        return self.state_dir / "users"

    def _user_file(self) -> Path:
        """This suite's registration: one per process and suite (a serial run has many suites in one process)."""
        suite = hashlib.sha1(self._suite_source().encode()).hexdigest()[:12]
        return self.users_dir / f"{os.getpid()}-{suite}.json"

    def _register_user(self) -> None:
        self.users_dir.mkdir(parents=True, exist_ok=True)
        record = {"suite": self._suite_source(), "process": _process_identity(os.getpid())}
        self._user_file().write_text(json.dumps(record), encoding="utf-8")

    def _other_live_users(self) -> list[str]:
        """Suites of live processes, other than this one, that use the platform; dead registrations are dropped."""
        mine, others = self._user_file(), []
        for path in sorted(self.users_dir.glob("*.json")) if self.users_dir.is_dir() else []:
            if path == mine:
                continue
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                record = {}
            if _identity_alive(record.get("process")):
                others.append(str(record.get("suite") or path.stem))
            else:
                path.unlink(missing_ok=True)
        return others

    def _suite_source(self) -> str:
        try:
            return str(BuiltIn().get_variable_value("${SUITE SOURCE}") or "")
        except RobotNotRunningError:
            return ""

    def _run_root(self) -> dict | None:
        """The process that owns this test run: pabot's main process under pabot, robot otherwise."""
        try:
            under_pabot = BuiltIn().get_variable_value("${PABOTEXECUTIONPOOLID}") is not None
        except RobotNotRunningError:
            under_pabot = False
        return _process_identity(os.getppid() if under_pabot else os.getpid())

    def _testbed(self, *args: str, timeout: float) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "testbed", *args]
        self.info(f"Running: {' '.join(command)}")
        try:
            completed = subprocess.run(
                command,
                cwd=self.ctx.project_root,
                capture_output=True,
                text=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise PlatformStartError(
                f"'{' '.join(command)}' did not finish within {format_seconds(timeout)}."
            ) from None
        if completed.stdout.strip():
            self.debug(completed.stdout.strip())
        if completed.stderr.strip():
            self.info(completed.stderr.strip()[-4000:])
        return completed

    def _answers(self) -> bool:
        """Whether a platform is up at the endpoints file's API URL: any HTTP answer counts, and so does a platform
        process that is alive but slow to answer. A test may hold the shared platform's store down (a DynamoDB outage
        makes ``/health`` wait for the store): that platform is faulted, not absent, and starting another would stop
        it under the test."""
        if not self.ctx.endpoints.exists():
            return False
        try:
            url = str(self.endpoint("PLATFORM_API_URL")).rstrip("/") + "/health"
            requests.get(url, timeout=min(2.0, self.profile.seconds("HTTP_TIMEOUT")))
        except (requests.RequestException, RuntimeError):
            return self._platform_process_alive()
        return True

    def _platform_process_alive(self) -> bool:
        """Whether the platform process the state folder names (``run/platform.json``) still runs."""
        try:
            pid = int(json.loads((self.state_dir / "run" / "platform.json").read_text(encoding="utf-8"))["pid"])
            process = psutil.Process(pid)
            return process.status() != psutil.STATUS_ZOMBIE and "testbed" in " ".join(process.cmdline())
        except (OSError, ValueError, KeyError, psutil.Error):
            return False

    def _healthy(self) -> bool:
        try:
            url = str(self.endpoint("PLATFORM_API_URL")).rstrip("/") + "/health"
            response = requests.get(url, timeout=min(2.0, self.profile.seconds("HTTP_TIMEOUT")))
        except (requests.RequestException, RuntimeError):
            return False
        return response.status_code == 200

    @contextmanager
    def _start_lock(self):
        """Only one process at a time decides whether to start the platform."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.state_dir.parent / f".{self.state_dir.name}.start.lock", os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    # ------------------------------------------------------------------ keywords
    @keyword(tags=["embedded-only", "platform"])
    def start_embedded_platform(self, *options: str) -> dict:
        """Starts the embedded platform with ``python -m testbed up --state <PLATFORM_STATE_DIR>``.

        ``options`` are passed on after the profile's ``${PLATFORM_UP_OPTIONS}``, for example
        ``--defect    no-restart``. Waits until ``/health`` answers 200 (deadline
        ``${PLATFORM_START_TIMEOUT}``), marks the platform as started by this suite, and returns the endpoints.

        Example:
        | Start Embedded Platform
        | Start Embedded Platform | --defect | no-restart |
        """
        timeout = self.profile.seconds("PLATFORM_START_TIMEOUT")
        args = ["up", "--state", str(self.state_dir), *self.profile.items("PLATFORM_UP_OPTIONS"), *options]
        started = time.monotonic()
        completed = self._testbed(*args, timeout=timeout)
        if completed.returncode != 0:
            raise PlatformStartError(
                f"'python -m testbed {' '.join(args)}' failed with exit code "
                f"{completed.returncode}:\n{completed.stderr.strip()[-2000:]}"
            )
        self.ctx.endpoints.forget()
        remaining = max(1.0, timeout - (time.monotonic() - started))
        wait_until(
            lambda: True if self._healthy() else None,
            remaining,
            self.profile.seconds("POLL_INTERVAL"),
            lambda: f"The embedded platform did not become healthy; endpoints file {self.ctx.endpoints.file}",
        )
        self._write_marker(args)
        endpoints = self.ctx.endpoints.load()
        self.info(
            f"Embedded platform {endpoints.get('PLATFORM_INSTANCE')} up in "
            f"{format_seconds(time.monotonic() - started)}; API {endpoints.get('PLATFORM_API_URL')}, "
            f"defects {endpoints.get('DEFECTS') or 'none'}."
        )
        return endpoints

    @keyword(tags=["embedded-only", "platform"])
    def stop_embedded_platform(self) -> None:
        """Stops every process of the embedded platform (``python -m testbed down``) and drops the marker."""
        args = ["down", "--state", str(self.state_dir)]
        completed = self._testbed(*args, timeout=self.profile.seconds("PLATFORM_STOP_TIMEOUT"))
        self.marker.unlink(missing_ok=True)
        for registration in self.users_dir.glob("*.json") if self.users_dir.is_dir() else []:
            registration.unlink(missing_ok=True)
        self.ctx.endpoints.forget()
        if completed.returncode != 0:
            raise PlatformStartError(
                f"'python -m testbed {' '.join(args)}' failed with exit code "
                f"{completed.returncode}:\n{completed.stderr.strip()[-2000:]}"
            )
        self.info("Embedded platform stopped.")

    @keyword(tags=["platform"])
    def ensure_platform_is_running(self) -> None:
        """Makes sure a platform answers, starting the embedded one when the profile is local and none does.

        A platform that already answers (started by hand, by pabot's first worker or by a parent suite) is
        used as it is. On the AWS profile nothing is started: the keyword fails unless the platform is healthy.
        """
        if not self.profile.is_embedded:
            # Another test may hold the deployment with a fault on it (its store cut): wait for health as long as a
            # test may hold the deployment, instead of judging a deliberately faulted platform once.
            lease = timedelta(seconds=self.profile.seconds("PLATFORM_LOCK_TIMEOUT"))
            self.api.wait_until_platform_is_healthy(lease)
            return
        with self._start_lock():
            self._drop_stale_marker()
            if self._answers():
                self.info(
                    f"Using the platform already running at {self.endpoint('PLATFORM_API_URL')} "
                    f"(instance {self.ctx.endpoints.get('PLATFORM_INSTANCE', '?')})."
                )
            else:
                self.info("No platform answers; starting the embedded platform.")
                self.start_embedded_platform()
            self._register_user()

    @keyword(tags=["platform"])
    def stop_embedded_platform_if_started_by_suite(self) -> None:
        """Stops the embedded platform when this suite started it and no other suite of the run still uses it.

        A platform a person started, or one started by another run, is left alone. When the suite that started it
        ends while other suites of the same run still use it, the last of those suites stops it instead.
        """
        if not self.profile.is_embedded:
            return
        with self._start_lock():
            self._user_file().unlink(missing_ok=True)
            marker = self._read_marker()
            if marker is None:
                self.info("The platform was not started by a suite; leaving it running.")
                return
            if marker.get("root") != self._run_root():
                self.info(f"The platform belongs to {marker.get('owner')} of another run; leaving it running.")
                return
            others = self._other_live_users()
            owner = marker.get("owner") == self._suite_source()
            if owner and others:
                marker["handedOver"] = True
                self.marker.write_text(json.dumps(marker, indent=2), encoding="utf-8")
                self.info(f"{len(others)} other suite(s) of this run still use the platform; the last one stops it.")
                return
            if not owner and not (marker.get("handedOver") and not others):
                self.info(f"The platform belongs to {marker.get('owner')}; leaving it running.")
                return
            self.stop_embedded_platform()

    @keyword(tags=["platform"])
    def get_platform_endpoints(self) -> dict:
        """Returns the endpoints of the platform (on the embedded target: the content of ``endpoints.json``)."""
        return self.ctx.endpoints.load() if self.profile.is_embedded else {}

    @keyword(tags=["embedded-only", "platform"])
    def get_embedded_platform_setting(self, name: str) -> Any:
        """Returns a setting of the running embedded platform (``<STATE_DIR>/settings.json``), e.g. ``idle_timeout``.

        Example:
        | ${idle} = | Get Embedded Platform Setting | idle_timeout |
        """
        path = self.ctx.endpoints.state_dir / "settings.json"
        try:
            settings = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise PlatformStartError(f"Cannot read the platform settings {path}: {error}") from None
        if name not in settings:
            raise PlatformStartError(f"The platform has no setting '{name}'; known: {', '.join(sorted(settings))}.")
        return settings[name]

    def known_platform_setting(self, name: str) -> Any | None:
        """A setting of the platform under test where this machine can read it (the embedded platform's), else
        ``None``: a check that needs one judges it only where it is known (a deployment's settings are its own)."""
        if self.ctx.endpoints.local_platform_dir is None:
            return None
        return self.get_embedded_platform_setting(name)

    # ------------------------------------------------------------------ marker
    def _write_marker(self, args: list[str]) -> None:
        data = {"owner": self._suite_source(), "root": self._run_root(), "startedAt": time.time(), "args": args}
        self.marker.write_text(json.dumps(data, indent=2), encoding="utf-8")

    def _read_marker(self) -> dict | None:
        try:
            return json.loads(self.marker.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except ValueError:
            self.info(f"Ignoring unreadable marker {self.marker}.")
            return None

    def _drop_stale_marker(self) -> None:
        """A marker whose run has ended belongs to nobody; the platform it names is then left to people."""
        marker = self._read_marker()
        if marker is not None and not _identity_alive(marker.get("root")):
            self.marker.unlink(missing_ok=True)
