"""The PlatformLibrary class: one Robot Framework library made of one component per area."""

from __future__ import annotations

import re
from pathlib import Path

from robotlibcore import DynamicCore

from .aws.keywords import AwsKeywords
from .aws.session import sigv4_signer
from .core.base import LibraryContext, check_target, keyword_title
from .core.context import RunContext
from .core.endpoints import Endpoints
from .core.http_client import PlatformApiClient
from .core.machine import MachineKeywords
from .core.profile import Profile
from .core.tracking import SessionTracker
from .faults.balancer import LoadBalancerKeywords
from .faults.chaos import ChaosKeywords
from .faults.checks import ChaosCheckKeywords
from .faults.clock import ChaosTimeKeywords
from .faults.ecs import EcsRouteKeywords
from .faults.fis import FisKeywords
from .faults.helpers import ContainerHelpers
from .faults.injector import FaultInjector
from .faults.network import ChaosNetworkKeywords
from .faults.partition import ClientPartitionKeywords
from .faults.proxy import FaultProxyKeywords
from .faults.resources import ChaosResourceKeywords
from .faults.routes import ServiceRouteKeywords
from .faults.sessionfaults import SessionTaskFaultKeywords
from .faults.toxiproxy import mesh_hop_traces
from .load.keywords import LoadKeywords
from .load.scaling import ScalingKeywords
from .load.utilisation import UtilisationKeywords
from .report.cost import CostKeywords
from .report.metrics import MetricsKeywords
from .sessions.access import PlatformAccessKeywords
from .sessions.api import PlatformApiKeywords
from .sessions.concurrency import ConcurrencyKeywords
from .sessions.consistency import ConsistencyKeywords
from .sessions.history import SessionHistoryKeywords
from .sessions.reaper import ReaperKeywords
from .sessions.store import SessionStoreKeywords
from .sessions.workspace import WorkspaceKeywords
from .targets.aws.keywords import EcsKeywords
from .targets.containers import ContainerKeywords
from .targets.embedded.keywords import EmbeddedPlatformKeywords
from .targets.placement import TestPlacement

__version__ = "0.1.0"


# A keyword known by its Python name (no explicit ``@keyword(name=...)``).
SNAKE_NAME = re.compile(r"[a-z0-9_]+")


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
        self.ctx = LibraryContext(Profile({"PLATFORM_STATE_DIR": state_dir, "TARGET": target}), RunContext(run_id))
        ctx = self.ctx
        ctx.api_signer = lambda: sigv4_signer(ctx)
        # Who may call whom (docs/architecture.md): each component gets the siblings it uses, nothing else.
        api = PlatformApiKeywords(ctx)
        workspace = WorkspaceKeywords(ctx)
        containers = ContainerKeywords(
            ctx, api, mesh_hop_traces(lambda: str(ctx.endpoints.get("FAULT_PROXY_URL", "") or ""))
        )
        records = SessionStoreKeywords(ctx)
        embedded = EmbeddedPlatformKeywords(ctx, api)
        access = PlatformAccessKeywords(ctx)
        machine = MachineKeywords(ctx)
        metrics = MetricsKeywords(ctx, machine)
        injector = FaultInjector(ctx, access)
        clock = ChaosTimeKeywords(ctx, injector, api, embedded)
        ecs = EcsKeywords(ctx, containers, records)
        fis = FisKeywords(ctx, ecs, injector)
        network = ChaosNetworkKeywords(ctx, injector, api, fis)
        helpers = ContainerHelpers(ctx, injector, lambda: containers.backend)
        resources = ChaosResourceKeywords(ctx, injector, api, containers, helpers)
        self.container_keywords = containers  # named for tests and tools that hold the library
        components = [
            embedded,
            api,
            containers,
            records,
            workspace,
            ReaperKeywords(ctx),
            ConcurrencyKeywords(ctx),
            ConsistencyKeywords(ctx, api, workspace, records, containers),
            SessionHistoryKeywords(ctx, api),
            machine,
            metrics,
            access,
            injector,
            FaultProxyKeywords(ctx, injector),
            LoadBalancerKeywords(ctx, injector, fis),
            ChaosKeywords(ctx, injector, embedded, containers),
            network,
            ClientPartitionKeywords(ctx, injector, network),
            ServiceRouteKeywords(ctx, injector, network, fis),
            resources,
            EcsRouteKeywords(ctx, injector, resources, fis),
            SessionTaskFaultKeywords(ctx, injector, helpers, network, api, fis),
            clock,
            ChaosCheckKeywords(ctx, injector, api, containers, embedded, clock),
            LoadKeywords(ctx, api, metrics),
            ScalingKeywords(ctx, api),
            UtilisationKeywords(ctx, embedded, metrics),
            ecs,
            fis,
            CostKeywords(ctx, ecs, api, containers),
            AwsKeywords(ctx),
            TestPlacement(ctx),
            ctx.run,
        ]
        super().__init__(components)
        # Robot would show ``create_fis_experiment_template`` as "Create Fis Experiment Template": the library names
        # such keywords as the docs and suites write them ("Create FIS Experiment Template"). The Python name stays
        # a key too (tools and tests hold it); Robot matches names without case or spaces, so suites are unaffected.
        self._titles: dict[str, str] = {}
        for name in [n for n in self.keywords if SNAKE_NAME.fullmatch(n)]:
            title = keyword_title(name)
            if title != name.replace("_", " ").title():
                self.keywords[title], self.keywords_spec[title] = self.keywords[name], self.keywords_spec[name]
                self._titles[name] = title

    def get_keyword_names(self) -> list[str]:
        """Every keyword once, acronyms as the docs write them."""
        titles = set(self._titles.values())
        return sorted(self._titles.get(name, name) for name in self.keywords if name not in titles)

    def run_keyword(self, name: str, args: tuple, kwargs: dict | None = None):
        """Cross-cutting work for every keyword Robot Framework runs (as SeleniumLibrary does it): target gating.

        A keyword tagged ``aws-only`` or ``embedded-only`` fails at once on the other target, naming the profile.
        """
        check_target(self.ctx.profile, keyword_title(name), self.get_keyword_tags(name))
        return super().run_keyword(name, args, kwargs)

    # The shared state, for tests and for code that holds the library (never for components: they get ``ctx``).
    @property
    def profile(self) -> Profile:
        return self.ctx.profile

    @profile.setter
    def profile(self, profile: Profile) -> None:
        self.ctx.profile = profile

    @property
    def endpoints(self) -> Endpoints:
        return self.ctx.endpoints

    @endpoints.setter
    def endpoints(self, endpoints: Endpoints) -> None:
        self.ctx.endpoints = endpoints

    @property
    def context(self) -> RunContext:
        return self.ctx.run

    @property
    def tracker(self) -> SessionTracker:
        return self.ctx.tracker

    @property
    def aws_clients(self):
        return self.ctx.aws_clients

    @aws_clients.setter
    def aws_clients(self, clients) -> None:
        self.ctx.aws_clients = clients

    @property
    def api(self) -> PlatformApiClient:
        return self.ctx.api

    @property
    def project_root(self) -> Path:
        return self.ctx.project_root
