"""The aws:ecs:task-* faults of AWS FIS, carried out on the embedded platform's real task processes.

Each FIS action has a parameter table (names, defaults, ranges) checked when a template is created, and a method
of :class:`ProcessFaultActions` that injects it into one task. Faults that last (stress, network) return a handle
whose ``revert()`` undoes them; ``stop_task`` and ``kill_process`` act once and cannot be undone (FIS does not
restart what it stopped either).

How each fault is carried out here (the FIS way is in the FIS user guide, "AWS FIS actions reference",
aws:ecs:task-* actions, which run SSM documents with stress-ng / killall / tc in the task):

- stop-task: ECS StopTask through the registry (SIGTERM, SIGKILL after the stop timeout).
- task-kill-process: the signal is sent to every process of the task (its container process and that process's
  descendants) whose name is ``processName``, as killall matches names.
- task-cpu-stress / task-io-stress: stressor child processes put into the task's cgroup, so they compete with the
  app for the task's CPU quota. CPU: a busy/sleep duty cycle of ``percent`` over every 100 ms. I/O: 1 MiB blocks
  written and fsynced for ``percent`` of every 100 ms, into one file per worker (at most ``IO_FILE_MIB``, then
  rewritten from the start) in a temporary folder of the session's workspace.
- task-network-blackhole-port on a task of the API tier (an API target behind the load balancer): the load balancer is
  the only thing that sends the target traffic, so the black hole is made there (``PUT /targets/<id>/blackhole``):
  health checks and requests to the target get no answer while it lasts, as when FIS drops the packets to the task's
  port. Only ``ingress`` on the API container's port (its task definition's ``containerPort``) over ``tcp`` reaches
  anything: another port, ``udp`` or ``egress`` (the target's own calls to that port) black-holes nothing the
  target serves, and the action runs without effect, as it would on AWS.
- task-network-* on a session's task: the session's traffic reaches its container only through the service-mesh hop, a
  fault proxy (Toxiproxy API) proxy named ``mesh-<sessionId>``, so the network faults are toxics on it: latency ->
  ``latency`` toxic (downstream); blackhole-port -> ``timeout`` toxic with timeout 0 (data held forever) on the upstream
  stream for ingress, the downstream stream for egress; packet-loss -> ``timeout`` toxic with timeout 0 on the upstream
  stream with toxicity ``lossPercent / 100``: a share of the *connections* loses everything, not a share of the packets
  of every connection (a proxy sees streams, not packets). ``flowsPercent`` scales the toxicity (the share of flows
  the fault acts on). ``sources`` (the destinations of the task's egress the fault applies to) reach the mesh when
  they cover the platform's address (``ALL``, or an address or CIDR block holding 127.0.0.1, where everything runs);
  ``DYNAMODB``, ``S3`` and domain names name nothing a session's container calls, so the action runs without effect.
- task-network-latency / -packet-loss on a task of the API tier with ``sources`` naming an AWS service the API tier
  calls: DynamoDB (``DYNAMODB``, or the domain of its Regional endpoint, ``dynamodb.<region>.amazonaws.com``) or
  CloudWatch (the domain of its Regional endpoint, ``monitoring.<region>.amazonaws.com``, where the platform's metrics
  go). The API tier's calls to each take a fault proxy hop of their own (``dynamodb``, ``cloudwatch``), so the fault
  is a toxic there (latency: ``latency`` toxic downstream, what the service answers arrives late; packet loss:
  ``timeout`` toxic with timeout 0 upstream, toxicity ``lossPercent / 100 x flowsPercent / 100``; 100 % is a black
  hole), on each hop the sources name. Every API target shares those routes (one API core behind them), so the toxic
  is added by the first targeted API task of an action and removed when the last one lets go of it (the action ends,
  is stopped, or its tasks stop). ``sources`` that would also cover the API tier's other egress (``ALL``, an address
  or CIDR block holding 127.0.0.1, an Availability Zone) fail the action: only the routes to AWS services are
  emulated. Other domains, addresses and ``S3`` reach nothing the API tier calls: no effect.
- task-network-packet-loss on a task of the API tier with ``sources`` naming ECS's Regional endpoint
  (``ecs.<region>.amazonaws.com``, the domain the platform's ECS client calls; FIS has no keyword for it): the API
  tier's calls to the container control plane (RunTask, StopTask, UpdateService) get no answer, so the platform's
  control plane (``testbed.controlplane``) is switched to ``Unreachable``: each call fails after the ECS client's
  connect timeout, with no ECS error code. Held like the route to DynamoDB (the first targeted API task cuts it, the
  last one to let go restores the control-plane file). Only a whole cut is emulated: ``lossPercent`` and
  ``flowsPercent`` 100; less, or latency to ECS, fails the action.

Stressor children end with the platform: each one sets ``PR_SET_PDEATHSIG`` (SIGKILL) through ctypes, so it dies
when the thread that started it ends (the experiment's thread, which reverts its faults before it ends anyway), and
exits by itself a little after the action's duration in case nobody reverts it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import psutil

from ..cgroups import Limits
from ..controlplane import UNREACHABLE, ecs_endpoint_name
from ..faultproxy.client import ToxiproxyClient, ToxiproxyError
from .tasks import Task, TaskRegistry

ECS_TASK_RESOURCE = "aws:ecs:task"
TARGET_KEY = "Tasks"  # the target key of every aws:ecs:task action
MESH_PROXY_PREFIX = "mesh-"
IO_FILE_MIB = 32
STRESS_GRACE_S = 5.0  # a stressor nobody reverts exits this long after its duration
MAX_DURATION_S = 12 * 3600  # FIS quota: an action runs at most 12 hours
TASK_VCPUS = 1  # every task of the platform is a 1 vCPU task (cpu "1024")


def monitoring_endpoint_name(region: str) -> str:
    """CloudWatch's Regional endpoint (AWS General Reference, "Amazon CloudWatch endpoints and quotas")."""
    return f"monitoring.{region}.amazonaws.com"


def dynamodb_endpoint_name(region: str) -> str:
    """The domain of DynamoDB's Regional endpoint (AWS General Reference, "Amazon DynamoDB endpoints and quotas")."""
    return f"dynamodb.{region}.amazonaws.com"


class FaultError(Exception):
    """A fault could not be injected into a task; the message becomes the action's ``failed`` reason."""


class ParameterError(ValueError):
    """An action parameter FIS would refuse when the template is created (a ValidationException)."""


_DURATION = re.compile(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?")


def parse_iso_duration(text: str) -> float:
    """``PT30S``, ``PT2M``, ``PT1H``, ``PT1M30S`` -> seconds; anything else (or zero) is a ParameterError."""
    match = _DURATION.fullmatch(str(text).strip().upper())
    if match is None or not any(match.groups()) or str(text).strip().upper().endswith("T"):
        raise ParameterError(f"duration {text!r} is not an ISO 8601 duration such as PT30S, PT5M or PT1H")
    days, hours, minutes, seconds = match.groups()
    total = int(days or 0) * 86400 + int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds or 0)
    if total <= 0:
        raise ParameterError(f"duration {text!r} must be longer than zero")
    if total > MAX_DURATION_S:
        raise ParameterError(f"duration {text!r} is longer than the 12 hours an action may run")
    return total


# FIS user guide, "AWS FIS Actions reference", aws:ecs:task-network-latency / -packet-loss, sources: "an IPv4 address,
# an IPv4 CIDR block, a domain name, an AZ name (us-east-1a), an AZ ID (use1-az1), ALL, DYNAMODB, and S3", "separated
# by commas, without spaces".
SOURCE_KEYWORDS = ("ALL", "DYNAMODB", "S3")
_AZ_NAME = re.compile(r"[a-z]{2}(?:-gov)?-[a-z]+-\d[a-z]")
_AZ_ID = re.compile(r"[a-z]{2,5}\d{0,2}-az\d{1,2}")
_DOMAIN = re.compile(r"(?=.{1,253}\.?$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}\.?")
_IPV4ISH = re.compile(r"[\d.]+(?:/\d+)?")
LOOPBACK_ADDRESS = ipaddress.IPv4Address("127.0.0.1")  # where every process of the embedded platform listens


@dataclass(frozen=True)
class Source:
    """One entry of a network action's ``sources``: its kind (``ALL``, ``DYNAMODB``, ``S3``, ``ipv4``, ``cidr``,
    ``az``, ``domain``) and its text."""

    kind: str
    text: str

    def covers_loopback(self) -> bool:
        """Whether the traffic it names includes the platform's own address (everything here runs on 127.0.0.1)."""
        if self.kind == "ALL":
            return True
        if self.kind in ("ipv4", "cidr"):
            return LOOPBACK_ADDRESS in ipaddress.IPv4Network(self.text, strict=False)
        return False


def parse_sources(text: str) -> tuple[Source, ...]:
    """``sources`` as FIS takes them -> its entries; a form FIS does not know is a ParameterError."""
    raw = str(text)
    if not raw.strip():
        raise ParameterError("sources must name at least one source")
    found = []
    for item in raw.split(","):
        if not item or item != item.strip() or " " in item:
            raise ParameterError(f"sources {raw!r} must be separated by commas, without spaces")
        if item in SOURCE_KEYWORDS:
            found.append(Source(item, item))
        elif _IPV4ISH.fullmatch(item):
            try:
                if "/" in item:
                    ipaddress.IPv4Network(item, strict=False)
                    found.append(Source("cidr", item))
                else:
                    found.append(Source("ipv4", str(ipaddress.IPv4Address(item))))
            except ValueError:
                raise ParameterError(f"source {item!r} is not an IPv4 address or IPv4 CIDR block") from None
        elif _AZ_NAME.fullmatch(item) or _AZ_ID.fullmatch(item):
            found.append(Source("az", item))
        elif _DOMAIN.fullmatch(item):
            found.append(Source("domain", item.rstrip(".").lower()))
        else:
            raise ParameterError(
                f"source {item!r} is not an IPv4 address, an IPv4 CIDR block, a domain name, an AZ name or ID, "
                f"or one of {', '.join(SOURCE_KEYWORDS)}"
            )
    return tuple(found)


@dataclass(frozen=True)
class Param:
    """One parameter of a FIS action: how it is read, its default and its allowed values."""

    name: str
    kind: str  # "duration", "int", "choice", "bool", "sources" or "text"
    required: bool = False
    default: str | None = None
    low: int = 0
    high: int = 0
    choices: tuple[str, ...] = ()
    description: str = ""

    def parse(self, action_id: str, raw: str) -> Any:
        text = str(raw).strip()
        where = f"{action_id} parameter {self.name}"
        if self.kind == "duration":
            try:
                return parse_iso_duration(text)
            except ParameterError as error:
                raise ParameterError(f"{where}: {error}") from None
        if self.kind == "int":
            if not re.fullmatch(r"-?\d+", text):
                raise ParameterError(f"{where} must be a whole number, got {raw!r}")
            value = int(text)
            if not self.low <= value <= self.high:
                raise ParameterError(f"{where} must be between {self.low} and {self.high}, got {value}")
            return value
        if self.kind == "bool":
            if text.lower() not in ("true", "false"):
                raise ParameterError(f"{where} must be true or false, got {raw!r}")
            return text.lower() == "true"
        if self.kind == "sources":
            try:
                return parse_sources(str(raw))
            except ParameterError as error:
                raise ParameterError(f"{where}: {error}") from None
        if self.kind == "choice":
            if text not in self.choices:
                raise ParameterError(f"{where} must be one of {', '.join(self.choices)}, got {raw!r}")
            return text
        if not text:
            raise ParameterError(f"{where} must not be empty")
        return text


@dataclass(frozen=True)
class ActionSpec:
    """A supported FIS action: whether it lasts a ``duration``, and its parameters."""

    action_id: str
    description: str
    params: tuple[Param, ...]
    network: bool = False

    @property
    def instant(self) -> bool:
        return not any(p.kind == "duration" for p in self.params)

    def parse(self, raw: Mapping[str, Any] | None) -> dict[str, Any]:
        """The template's (string) parameters -> typed values with defaults; ParameterError names what is wrong."""
        given = dict(raw or {})
        known = {p.name: p for p in self.params}
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise ParameterError(
                f"{self.action_id} has no parameter(s) {', '.join(unknown)}; its parameters are "
                f"{', '.join(known) or 'none'}"
            )
        values: dict[str, Any] = {}
        for param in self.params:
            if param.name not in given or given[param.name] in (None, ""):
                if param.required:
                    raise ParameterError(f"{self.action_id} requires parameter {param.name} ({param.description})")
                if param.default is None:
                    continue
                values[param.name] = param.parse(self.action_id, param.default)
            else:
                values[param.name] = param.parse(self.action_id, given[param.name])
        return values

    def describe(self, region: str, account: str) -> dict[str, Any]:
        """GetAction's answer for this action."""
        return {
            "id": self.action_id,
            "arn": f"arn:aws:fis:{region}:{account}:action/{self.action_id}",
            "description": self.description,
            "parameters": {p.name: {"description": p.description, "required": p.required} for p in self.params},
            "targets": {TARGET_KEY: {"resourceType": ECS_TASK_RESOURCE}},
            "tags": {},
        }


_INSTALL = Param("installDependencies", "bool", default="true", description="ignored: nothing to install here")
_ENDPOINTS = Param(
    "useEcsFaultInjectionEndpoints", "bool", default="false", description="ignored: faults go through the mesh hop"
)
_SOURCES = Param(
    "sources",
    "sources",
    default="ALL",
    description="destinations of the egress traffic the fault applies to: IPv4 addresses, CIDR blocks, domain names, "
    "AZ names or IDs, ALL, DYNAMODB, S3 (comma-separated, no spaces)",
)
_FLOWS = Param("flowsPercent", "int", default="100", low=0, high=100, description="share of the network flows hit")


def _duration(what: str) -> Param:
    return Param("duration", "duration", required=True, description=f"how long {what}, ISO 8601 (PT5M)")


ACTIONS: dict[str, ActionSpec] = {
    spec.action_id: spec
    for spec in (
        ActionSpec("aws:ecs:stop-task", "Stop the target ECS tasks.", ()),
        ActionSpec(
            "aws:ecs:task-kill-process",
            "Kill a process in the target ECS tasks.",
            (
                Param("processName", "text", required=True, description="the name of the processes to kill"),
                Param("signal", "choice", default="SIGKILL", choices=("SIGKILL", "SIGTERM")),
                _INSTALL,
            ),
        ),
        ActionSpec(
            "aws:ecs:task-cpu-stress",
            "Run CPU stress on the target ECS tasks.",
            (
                _duration("the stress lasts"),
                Param("percent", "int", default="100", low=0, high=100, description="target CPU load, 0-100"),
                Param("workers", "int", default="0", low=0, high=64, description="stressors; 0 = one per vCPU"),
                _INSTALL,
            ),
        ),
        ActionSpec(
            "aws:ecs:task-io-stress",
            "Run I/O stress on the target ECS tasks.",
            (
                _duration("the stress lasts"),
                Param("percent", "int", default="80", low=1, high=100, description="share of time spent writing"),
                Param("workers", "int", default="1", low=1, high=64, description="writer processes"),
                _INSTALL,
            ),
        ),
        ActionSpec(
            "aws:ecs:task-network-blackhole-port",
            "Drop the traffic of a port of the target ECS tasks.",
            (
                _duration("the traffic is dropped"),
                Param("port", "int", required=True, low=0, high=65535, description="the port"),
                Param("protocol", "choice", required=True, choices=("tcp", "udp"), description="tcp or udp"),
                Param("trafficType", "choice", default="ingress", choices=("ingress", "egress")),
                _INSTALL,
                _ENDPOINTS,
            ),
            network=True,
        ),
        ActionSpec(
            "aws:ecs:task-network-latency",
            "Add latency to the network traffic of the target ECS tasks.",
            (
                _duration("the latency lasts"),
                Param("delayMilliseconds", "int", default="200", low=0, high=600_000, description="added delay"),
                Param("jitterMilliseconds", "int", default="10", low=0, high=600_000, description="delay variation"),
                _FLOWS,
                _SOURCES,
                _INSTALL,
                _ENDPOINTS,
            ),
            network=True,
        ),
        ActionSpec(
            "aws:ecs:task-network-packet-loss",
            "Drop a share of the network traffic of the target ECS tasks.",
            (
                _duration("the loss lasts"),
                Param("lossPercent", "int", default="7", low=0, high=100, description="share of traffic lost"),
                _FLOWS,
                _SOURCES,
                _INSTALL,
                _ENDPOINTS,
            ),
            network=True,
        ),
    )
}


class Reversible(Protocol):
    """A fault that lasts: ``revert()`` undoes it (safe to call more than once)."""

    def revert(self) -> None: ...


class ApiTierFaults(Protocol):
    """What the API tier (``testbed.apitier.ApiTier``) offers the FIS actions: its targets' tasks and black holes."""

    def target_of_task(self, task_arn: str) -> str | None: ...

    def blackhole(self, ident: str, on: bool) -> bool: ...


class FaultActions(Protocol):
    """What a FIS emulator needs to inject the aws:ecs:task-* faults into one task."""

    def stop_task(self, task: Task, reason: str) -> None: ...

    def kill_process(self, task: Task, process_name: str, signal_name: str = "SIGKILL") -> list[int]: ...

    def cpu_stress(self, task: Task, percent: int, workers: int, duration: float) -> Reversible: ...

    def io_stress(self, task: Task, percent: int, duration: float, workers: int = 1) -> Reversible: ...

    def network_latency(
        self,
        task: Task,
        delay_ms: int,
        jitter_ms: int,
        toxic_name: str,
        sources: tuple[Source, ...] = (Source("ALL", "ALL"),),
        flows_percent: int = 100,
    ) -> Reversible: ...

    def network_blackhole_port(
        self, task: Task, port: int, protocol: str, traffic_type: str, toxic_name: str
    ) -> Reversible: ...

    def network_packet_loss(
        self,
        task: Task,
        loss_percent: int,
        toxic_name: str,
        sources: tuple[Source, ...] = (Source("ALL", "ALL"),),
        flows_percent: int = 100,
    ) -> Reversible: ...


# The stressor: argv = mode ("cpu"/"io"), parent pid, percent, seconds, folder (io only).
_STRESSOR = r"""
import ctypes, os, signal, sys, time
mode, parent, percent, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
try:
    libc = ctypes.CDLL(None)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    libc.prctl(15, ("fis-%s-stress" % mode).encode())  # PR_SET_NAME
except (OSError, AttributeError):
    pass
if os.getppid() != parent:
    sys.exit(0)
end = time.monotonic() + seconds
period, busy = 0.1, 0.1 * percent / 100.0
fd = None
if mode == "io":
    path = os.path.join(sys.argv[5], "io-%d.bin" % os.getpid())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    block, blocks, limit = os.urandom(1 << 20), 0, int(sys.argv[6])
try:
    while True:
        start = time.monotonic()
        if start >= end:
            break
        while time.monotonic() - start < busy:
            if fd is not None:
                if blocks >= limit:
                    os.lseek(fd, 0, os.SEEK_SET)
                    blocks = 0
                os.write(fd, block)
                os.fsync(fd)
                blocks += 1
        rest = period - (time.monotonic() - start)
        if rest > 0:
            time.sleep(rest)
finally:
    if fd is not None:
        os.close(fd)
        os.unlink(path)
"""


class StressProcesses:
    """Stressor processes started for one action on one task; ``revert()`` kills them and removes their files."""

    def __init__(self, procs: list[subprocess.Popen[bytes]], folder: Path | None = None) -> None:
        self.procs = procs
        self.folder = folder
        self._lock = threading.Lock()

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def revert(self) -> None:
        with self._lock:
            for proc in self.procs:
                if proc.poll() is None:
                    with contextlib.suppress(OSError):
                        proc.kill()
            for proc in self.procs:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(5)
            if self.folder is not None:
                shutil.rmtree(self.folder, ignore_errors=True)


class NoEffect:
    """A fault that acted on nothing this task serves (a port or direction it does not use); nothing to undo."""

    def revert(self) -> None:
        return None


class BlackholedTarget:
    """An API target whose port the load balancer black-holes; ``revert()`` frees it (a target gone is fine)."""

    def __init__(self, tier: ApiTierFaults, ident: str) -> None:
        self.tier = tier
        self.ident = ident
        self._done = False

    def revert(self) -> None:
        if self._done:
            return
        with contextlib.suppress(OSError):  # the load balancer is gone, and the black hole with it
            self.tier.blackhole(self.ident, False)
        self._done = True


class MeshToxic:
    """A toxic on a session's mesh hop; ``revert()`` removes it (already gone, or the hop with it, is fine)."""

    def __init__(self, client: ToxiproxyClient, proxy: str, name: str) -> None:
        self.client = client
        self.proxy = proxy
        self.name = name
        self._removed = False

    def revert(self) -> None:
        if self._removed:
            return
        try:
            self.client.remove_toxic(self.proxy, self.name)
        except ToxiproxyError as error:
            if error.status not in (0, 404):  # 0: the fault proxy is gone, and its toxics with it
                raise
        self._removed = True


class SharedRouteToxic:
    """One API task's hold on the toxics of routes every API target shares (their routes to DynamoDB, CloudWatch);
    ``revert()`` lets go of them, and the last hold on a toxic to go removes it."""

    def __init__(self, releases: list[Callable[[], None]]) -> None:
        self._releases = releases
        self._done = False

    def revert(self) -> None:
        if self._done:
            return
        self._done = True
        for release in self._releases:
            release()


def _names_of(process: psutil.Process) -> set[str]:
    """Every name ``process`` goes by: its name, the first word of its title (setproctitle), its executable."""
    names: set[str] = set()
    with contextlib.suppress(psutil.Error):
        names.add(process.name())
    with contextlib.suppress(psutil.Error, IndexError):
        names.add(process.cmdline()[0])
    with contextlib.suppress(psutil.Error):
        names.add(process.exe())
    found = set()
    for name in names:
        words = name.split()
        if words:
            found.add(os.path.basename(words[0]))
    return found


def _name_matches(name: str, wanted: str) -> bool:
    """killall-like: the exact name, or the name plus a version (``python`` matches ``python3.11``)."""
    return name == wanted or (name.startswith(wanted) and re.fullmatch(r"[\d.]+", name[len(wanted) :]) is not None)


class ProcessFaultActions:
    """The aws:ecs:task-* faults on the platform's task processes (see the module docstring for how).

    ``mesh_client_factory()`` returns the fault proxy's admin client (or None without a mesh); the client is not
    closed here, so the factory may hand out a shared one. ``limits`` puts stressors into a task's cgroup;
    ``workspace_of(task)`` is the session's workspace folder (None: a temporary folder is used). ``route_hops`` names
    the fault proxy's hop the API tier's calls to each AWS service take (``dynamodb``, ``cloudwatch``), and ``region``
    the region whose Regional endpoints (``dynamodb.<region>.amazonaws.com``, ``monitoring.<region>.amazonaws.com``)
    those hops stand for. ``control_plane`` is the platform's control-plane file
    (``testbed.controlplane``): the API tier's route to ECS (``ecs.<region>.amazonaws.com``) is cut there.
    """

    def __init__(
        self,
        registry: TaskRegistry,
        mesh_client_factory: Callable[[], ToxiproxyClient | None],
        limits: Limits | None,
        workspace_of: Callable[[Task], str | os.PathLike[str] | None],
        api_tier: ApiTierFaults | None = None,
        api_port: int = 8080,
        region: str = "us-east-1",
        route_hops: Mapping[str, str] | None = None,
        control_plane: Path | None = None,
    ) -> None:
        self.registry = registry
        self.mesh_client_factory = mesh_client_factory
        self.limits = limits
        self.workspace_of = workspace_of
        self.api_tier = api_tier
        self.api_port = api_port
        hops = {"dynamodb": "dynamodb", "cloudwatch": "cloudwatch", **(route_hops or {})}
        self.dynamodb_endpoint = dynamodb_endpoint_name(region)
        # The names FIS sources give each AWS service the API tier calls -> the hop its calls take.
        self.route_names: dict[str, frozenset[str]] = {
            hops["dynamodb"]: frozenset({"DYNAMODB", self.dynamodb_endpoint}),
            hops["cloudwatch"]: frozenset({monitoring_endpoint_name(region)}),
        }
        self._shared_lock = threading.Lock()
        self._shared: dict[tuple[str, str], int] = {}  # (hop, toxic name) -> API tasks holding it
        self.control_plane = control_plane
        self.ecs_endpoint = ecs_endpoint_name(region)
        self._plane_holds = 0  # API tasks whose route to ECS is cut
        self._plane_before: str | None = None  # what the control-plane file held before the cut

    # ----- instant actions ---------------------------------------------------------------------------------------
    def stop_task(self, task: Task, reason: str) -> None:
        """ECS StopTask, as FIS's aws:ecs:stop-task calls it (``reason`` names the experiment)."""
        self.registry.stop_task(task.arn, reason)

    def kill_process(self, task: Task, process_name: str, signal_name: str = "SIGKILL") -> list[int]:
        """Send ``signal_name`` to the task's processes named ``process_name``; returns their PIDs."""
        number = {"SIGKILL": signal.SIGKILL, "SIGTERM": signal.SIGTERM}.get(signal_name)
        if number is None:
            raise FaultError(f"signal {signal_name!r} is not supported; use SIGKILL or SIGTERM")
        processes = self._processes(task)
        matched = [p for p in processes if any(_name_matches(n, process_name) for n in _names_of(p))]
        if not matched:
            running = ", ".join(f"{p.pid} {'/'.join(sorted(_names_of(p)))}" for p in processes) or "nothing"
            raise FaultError(f"no process named {process_name!r} runs in task {task.task_id} (it runs: {running})")
        killed = []
        for process in matched:
            with contextlib.suppress(psutil.Error):
                process.send_signal(number)
                killed.append(process.pid)
        return killed

    # ----- stress ------------------------------------------------------------------------------------------------
    def cpu_stress(self, task: Task, percent: int, workers: int, duration: float) -> StressProcesses:
        """``workers`` stressors (0: one per vCPU of the task) burning ``percent``% CPU in the task's cgroup."""
        self._processes(task)  # the task must be running
        count = workers or TASK_VCPUS
        return self._start(task, "cpu", percent, duration, count, None)

    def io_stress(self, task: Task, percent: int, duration: float, workers: int = 1) -> StressProcesses:
        """``workers`` writers fsyncing 1 MiB blocks ``percent``% of the time, in the session's workspace."""
        self._processes(task)
        base = self.workspace_of(task)
        parent = Path(base) if base is not None and Path(base).is_dir() else Path(tempfile.gettempdir())
        folder = Path(tempfile.mkdtemp(prefix=f"fis-io-{task.task_id[:12]}-", dir=parent))
        try:
            return self._start(task, "io", percent, duration, workers, folder)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise

    def _start(
        self, task: Task, mode: str, percent: int, duration: float, count: int, folder: Path | None
    ) -> StressProcesses:
        args = [mode, str(os.getpid()), str(percent), str(duration + STRESS_GRACE_S)]
        if folder is not None:
            args += [str(folder), str(IO_FILE_MIB)]
        handle = StressProcesses([], folder)
        try:
            for _ in range(max(1, count)):
                proc = subprocess.Popen(
                    [sys.executable, "-I", "-c", _STRESSOR, *args],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    close_fds=True,
                )
                handle.procs.append(proc)
                if self.limits is not None and task.cgroup:
                    self.limits.apply(task.cgroup, proc.pid)
        except BaseException as error:
            handle.revert()
            if isinstance(error, OSError):
                raise FaultError(f"could not start the {mode} stressor in task {task.task_id}: {error}") from None
            raise
        return handle

    # ----- network -----------------------------------------------------------------------------------------------
    def network_latency(
        self,
        task: Task,
        delay_ms: int,
        jitter_ms: int,
        toxic_name: str,
        sources: tuple[Source, ...] = (Source("ALL", "ALL"),),
        flows_percent: int = 100,
    ) -> Reversible:
        """Egress to ``sources`` ``delay_ms`` late (on ``flows_percent`` % of the flows): the mesh hop of a session's
        task, or the API tier's route to DynamoDB (see the module docstring)."""
        attributes = {"latency": delay_ms, "jitter": jitter_ms}
        return self._network(task, sources, toxic_name, "latency", "downstream", attributes, flows_percent / 100.0)

    def network_blackhole_port(
        self, task: Task, port: int, protocol: str, traffic_type: str, toxic_name: str
    ) -> Reversible:
        """Hold the data of one direction forever: ingress = what clients send, egress = what the task answers.

        A session's task has one port, the one its mesh hop forwards to, so ``port`` is not matched against it. An
        API target's task is black-holed where the load balancer reaches it (see the module docstring).
        """
        ident = self.api_tier.target_of_task(task.arn) if self.api_tier is not None else None
        if ident is not None and self.api_tier is not None:
            self._processes(task)  # the task must be running
            if (protocol, traffic_type, port) != ("tcp", "ingress", self.api_port):
                return NoEffect()
            if not self.api_tier.blackhole(ident, True):
                raise FaultError(f"API target {ident} of task {task.task_id} is not registered with the load balancer")
            return BlackholedTarget(self.api_tier, ident)
        if protocol != "tcp":
            raise FaultError(f"protocol {protocol}: the mesh hop of task {task.task_id} carries TCP only")
        stream = "upstream" if traffic_type == "ingress" else "downstream"
        return self._toxic(task, toxic_name, "timeout", stream, {"timeout": 0}, 1.0)

    def network_packet_loss(
        self,
        task: Task,
        loss_percent: int,
        toxic_name: str,
        sources: tuple[Source, ...] = (Source("ALL", "ALL"),),
        flows_percent: int = 100,
    ) -> Reversible:
        """``lossPercent``% of the connections (of ``flows_percent`` % of the flows) to ``sources`` lose everything they
        send (per connection, not per packet)."""
        share = loss_percent / 100.0 * flows_percent / 100.0
        return self._network(task, sources, toxic_name, "timeout", "upstream", {"timeout": 0}, share)

    def _network(
        self,
        task: Task,
        sources: tuple[Source, ...],
        name: str,
        kind: str,
        stream: str,
        attributes: dict[str, Any],
        toxicity: float,
    ) -> Reversible:
        """Where a latency or packet-loss fault on ``task``'s egress to ``sources`` lands (see the module docstring)."""
        api_target = self.api_tier.target_of_task(task.arn) if self.api_tier is not None else None
        if api_target is not None:
            self._processes(task)  # the task must be running
            wide = [s.text for s in sources if s.covers_loopback() or s.kind == "az"]
            if wide:
                named = " or ".join(sorted(n for names in self.route_names.values() for n in names))
                raise FaultError(
                    f"sources {', '.join(wide)} would also take the API task {task.task_id}'s calls to the session "
                    "containers; the emulation carries out network faults on an API task only on its routes to AWS "
                    f"services (sources {named}) and to ECS ({self.ecs_endpoint})"
                )
            if any(s.kind == "domain" and s.text == self.ecs_endpoint for s in sources):
                return self._cut_control_plane(sources, kind, toxicity)
            hops = [
                hop
                for hop, names in self.route_names.items()
                if any(s.kind in ("DYNAMODB", "domain") and s.text in names for s in sources)
            ]
            if not hops:
                return NoEffect()  # S3, other domains and addresses: nothing the API tier calls
            return self._route_toxic(hops, name, kind, stream, attributes, toxicity)
        if any(s.kind == "az" for s in sources):
            raise FaultError("the emulated deployment has no Availability Zones: AZ sources cannot be resolved")
        if not any(s.covers_loopback() for s in sources):
            return NoEffect()  # DYNAMODB, S3, domains, other addresses: nothing a session's container calls
        return self._toxic(task, name, kind, stream, attributes, toxicity)

    def _route_toxic(
        self, hops: list[str], name: str, kind: str, stream: str, attributes: dict[str, Any], toxicity: float
    ) -> SharedRouteToxic:
        """A hold on the toxic ``name`` on each of the API tier's routes ``hops`` (added by the action's first API
        task)."""
        held: list[str] = []
        try:
            for hop in hops:
                self._hold(hop, name, kind, stream, attributes, toxicity)
                held.append(hop)
        except BaseException:
            for hop in held:
                self._release_route_toxic(hop, name)
            raise
        return SharedRouteToxic([lambda hop=hop: self._release_route_toxic(hop, name) for hop in held])

    def _hold(self, hop: str, name: str, kind: str, stream: str, attributes: dict[str, Any], toxicity: float) -> None:
        with self._shared_lock:
            if not self._shared.get((hop, name)):
                client = self.mesh_client_factory()
                if client is None:
                    raise FaultError(f"this platform runs without a fault proxy, so its route {hop} has no hop")
                try:
                    client.add_toxic(hop, kind, stream, toxicity=toxicity, attributes=attributes, name=name)
                except ToxiproxyError as error:
                    raise FaultError(f"the {hop} hop refused the {kind} toxic: {error.message}") from None
            self._shared[(hop, name)] = self._shared.get((hop, name), 0) + 1

    def _release_route_toxic(self, hop: str, name: str) -> None:
        with self._shared_lock:
            left = self._shared.get((hop, name), 0) - 1
            if left > 0:
                self._shared[(hop, name)] = left
                return
            self._shared.pop((hop, name), None)
            client = self.mesh_client_factory()
            if client is None:
                return
            try:
                client.remove_toxic(hop, name)
            except ToxiproxyError as error:
                if error.status not in (0, 404):  # 0: the fault proxy is gone, and its toxics with it
                    raise

    def _cut_control_plane(self, sources: tuple[Source, ...], kind: str, share: float) -> SharedRouteToxic:
        """A hold on the API tier's route to ECS, cut: the control plane becomes ``Unreachable`` (see the module
        docstring) until the last API task of the action lets go."""
        if self.control_plane is None:
            raise FaultError("this platform has no control-plane file, so its route to ECS cannot be cut")
        if kind != "timeout" or share < 1.0:
            raise FaultError(
                f"the emulation cuts the API tier's route to ECS ({self.ecs_endpoint}) only as a whole: packet loss "
                "with lossPercent 100 and flowsPercent 100 (its calls then time out connecting); latency or a partial "
                "loss to ECS is not emulated"
            )
        names = {"DYNAMODB", self.dynamodb_endpoint}
        if any(s.kind in ("DYNAMODB", "domain") and s.text in names for s in sources):
            raise FaultError("name ECS and DynamoDB in separate actions: the emulation cuts one route of an API task")
        path = self.control_plane
        with self._shared_lock:
            if not self._plane_holds:
                try:
                    self._plane_before = path.read_text() if path.exists() else None
                    tmp = path.with_name(f".{path.name}.fis.tmp")
                    tmp.write_text(f"{UNREACHABLE}\n")
                    os.replace(tmp, path)
                except OSError as error:
                    raise FaultError(f"could not cut the route to ECS ({path}): {error}") from None
            self._plane_holds += 1
        return SharedRouteToxic([self._restore_control_plane])

    def _restore_control_plane(self) -> None:
        with self._shared_lock:
            self._plane_holds -= 1
            if self._plane_holds > 0 or self.control_plane is None:
                return
            path, before = self.control_plane, self._plane_before
            with contextlib.suppress(FileNotFoundError):  # the platform's state folder is gone, and the cut with it
                if before is None:
                    path.unlink()
                else:
                    tmp = path.with_name(f".{path.name}.fis.tmp")
                    tmp.write_text(before)
                    os.replace(tmp, path)

    def _toxic(
        self, task: Task, name: str, kind: str, stream: str, attributes: dict[str, Any], toxicity: float
    ) -> MeshToxic:
        session = task.session_id
        if not session:
            raise FaultError(f"task {task.task_id} serves no session, so it has no mesh hop to inject into")
        client = self.mesh_client_factory()
        if client is None:
            raise FaultError("this platform runs without a service mesh (no fault proxy), so no network faults")
        proxy = f"{MESH_PROXY_PREFIX}{session}"
        try:
            client.add_toxic(proxy, kind, stream, toxicity=toxicity, attributes=attributes, name=name)
        except ToxiproxyError as error:
            if error.status == 404:
                raise FaultError(f"task {task.task_id} has no mesh hop {proxy} (session {session})") from None
            raise FaultError(f"the mesh hop {proxy} refused the {kind} toxic: {error.message}") from None
        return MeshToxic(client, proxy, name)

    # ----- helpers -----------------------------------------------------------------------------------------------
    @staticmethod
    def _processes(task: Task) -> list[psutil.Process]:
        """The task's container process and its descendants; FaultError when the task runs nothing."""
        proc = task.proc
        if proc is None or proc.poll() is not None:
            raise FaultError(f"task {task.task_id} is {task.last_status}: it has no running process")
        try:
            root = psutil.Process(proc.pid)
            return [root, *root.children(recursive=True)]
        except psutil.Error:
            raise FaultError(f"task {task.task_id} is {task.last_status}: its process is gone") from None
