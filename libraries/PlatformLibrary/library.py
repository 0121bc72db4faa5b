"""The PlatformLibrary class: one Robot Framework library made of one component per area."""

from __future__ import annotations

from pathlib import Path

from robotlibcore import DynamicCore

from .access import PlatformAccessKeywords
from .aws import AwsKeywords
from .chaos import ChaosKeywords
from .consistency import ConsistencyKeywords
from .containers import ContainerKeywords
from .context import RunContext
from .embedded import PROJECT_ROOT, EmbeddedPlatformKeywords
from .endpoints import Endpoints
from .faults import FaultProxyKeywords
from .http_client import PlatformApiClient
from .load import LoadKeywords
from .machine import MachineKeywords
from .metrics import MetricsKeywords
from .platform_api import PlatformApiKeywords
from .profile import Profile
from .report import ReportKeywords
from .session_store import SessionStoreKeywords
from .tracking import SessionTracker

__version__ = "0.1.0"


class PlatformLibrary(DynamicCore):
    """Keywords for resilience and performance acceptance tests of the per-user container session platform.

    The platform: an API creates sessions, keeps their records in DynamoDB, runs each session as its own
    container with its workspace on EFS, scales out and stops idle sessions. The library talks to it the way
    a client and an operator would, and cross-checks what each of them sees.

    = Profiles =

    Every timeout, SLA number and target setting comes from the active profile, a variable file:
    ``resources/profiles/local.py`` (default, the embedded platform) or ``resources/profiles/aws.py``.
    Keywords read the profile when they run, so ``--variablefile`` and ``--variable`` on the command line
    always win. Timeouts are Robot Framework times such as ``30 s`` or ``2 min``.

    = Endpoints =

    On the local profile the endpoints are read from ``<PLATFORM_STATE_DIR>/endpoints.json`` the moment a
    keyword needs them, because variable files are read before the platform exists. A restarted platform
    is picked up automatically.

    = Sessions and cleanup =

    Keywords accept a session as its id or as the session object `Create Session` returns.
    Every session a test creates is remembered; call `Delete Sessions Created By This Test` in the test
    teardown. Generated user ids contain the run id, the pabot worker and the test number, so parallel
    runs never collide.

    = Waiting =

    Keywords never sleep and hope. Wait keywords poll until the condition holds or the deadline passes, log
    how long it took and return the seconds, ready for `Record Metric` and the SLA assertions.

    = Example =

    | ***** Settings *****
    | Library | PlatformLibrary |
    |
    | ***** Test Cases *****
    | Killed Container Comes Back
    |  | ${session} = | Create Session |
    |  | Wait Until Session Is Running | ${session} |
    |  | Kill Session Container | ${session} | SIGKILL |
    |  | ${seconds} = | Wait Until Container Restarted | ${session} |
    |  | Duration Should Be Below | ${seconds} | ${SLA_RECOVERY_MAX} | name=Recovery time |
    |  | [Teardown] | Delete Sessions Created By This Test |
    """

    ROBOT_LIBRARY_SCOPE = "GLOBAL"
    ROBOT_LIBRARY_VERSION = __version__
    ROBOT_LIBRARY_DOC_FORMAT = "ROBOT"

    def __init__(self, state_dir: str | None = None, target: str | None = None, run_id: str | None = None):
        """Everything comes from the profile; the arguments only override it.

        | =Argument= | =Overrides= |
        | ``state_dir`` | ``${PLATFORM_STATE_DIR}``, where the embedded platform keeps ``endpoints.json`` |
        | ``target`` | ``${TARGET}``: ``embedded`` or ``aws`` |
        | ``run_id`` | the id that makes generated names unique (default: env ``PLATFORM_SUITE_RUN_ID`` or random) |
        """
        self.profile = Profile({"PLATFORM_STATE_DIR": state_dir, "TARGET": target})
        self.context = RunContext(run_id)
        self.endpoints = Endpoints(self.profile)
        self.tracker = SessionTracker()
        self.project_root: Path = PROJECT_ROOT
        self._api: PlatformApiClient | None = None
        self.api_keywords = PlatformApiKeywords(self)
        self.container_keywords = ContainerKeywords(self)
        self.store_keywords = SessionStoreKeywords(self)
        machine = MachineKeywords(self)
        metrics = MetricsKeywords(self, machine)
        components = [
            EmbeddedPlatformKeywords(self),
            self.api_keywords,
            self.container_keywords,
            self.store_keywords,
            ConsistencyKeywords(self),
            machine,
            metrics,
            FaultProxyKeywords(self),
            PlatformAccessKeywords(self),
            ChaosKeywords(self),
            LoadKeywords(self, metrics),
            ReportKeywords(self),
            AwsKeywords(self),
            self.context,
        ]
        super().__init__(components)

    @property
    def api(self) -> PlatformApiClient:
        if self._api is None:
            self._api = PlatformApiClient(
                lambda: self.endpoints.get("PLATFORM_API_URL"), timeout=lambda: self.profile.seconds("HTTP_TIMEOUT")
            )
        return self._api
