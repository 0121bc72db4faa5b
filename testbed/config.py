"""All settings of the embedded platform in one place, and the named defect switches.

Defaults keep the full suite fast (seconds, not minutes). Override any setting with ``--set key=value`` on
``python -m testbed up`` or with an environment variable ``TESTBED_<KEY>`` (upper case).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

DEFECTS: dict[str, str] = {
    "no-restart": "A crashed container is not restarted; the session is marked FAILED.",
    "stale-status": "After a crash the container is restarted but the session record is never updated.",
    "workspace-lost-on-restart": "A restarted container starts with an empty workspace.",
    "double-start": "A restart spawns a second container for the session without stopping the first.",
    "orphan-on-create-failure": "When a create fails after its container started, the container is leaked.",
    "no-reaper": "The reaper finds orphans and stuck sessions but never stops them.",
    "no-throttle-retry": "The platform's DynamoDB client does not retry throttled or failed calls.",
    "store-no-timeout": "The DynamoDB client waits botocore's default 60 s for an answer: a lost call hangs.",
    "no-backpressure": "Capacity is not enforced: every create is accepted and queued without bound.",
    "serve-expired": "Sessions past their TTL are still served as live.",
    "no-idle-shutdown": "Idle sessions are never shut down.",
    "lost-update": "State transitions are blind writes instead of conditional writes.",
    "no-circuit-breaker": "During a DynamoDB outage every call waits out its timeouts and retries: no fail-fast.",
    "health-lies": "GET /health answers ok even while the session store is unreachable.",
    "no-memory-limit": "Containers run without a memory limit, so memory pressure never stops them.",
    "no-scale-out": "The autoscaler never adds capacity, however many sessions wait.",
    "efs-silent-fallback": "While the workspace (EFS) is unavailable, writes go to a local folder and answer 201.",
    "slow-start": "Container cold start is ten times slower (a performance regression).",
    "unsafe-paths": "Workspace paths are not checked: '..' escapes the workspace.",
    "reaper-forgets": "The reaper acts but keeps no record of what it did (GET /admin/reaper stays empty).",
    "container-timeout-retried": "The API retries a container that did not answer in time, so it hangs twice as long.",
    "mesh-hop-leak": "A deleted session's service-mesh hop is never removed from the fault proxy.",
    "metrics-in-request-path": "A create publishes a metric to CloudWatch on its way and fails when CloudWatch does.",
    "keep-refused-creates": "A create answered 503 whose write landed anyway (answer lost) leaves its record live.",
    "billed-after-delete": "A delete leaves the session's container draining for good: it runs, billed, after delete.",
    "control-plane-outage-strands-pending": "A start ECS refused during an outage is never retried: it stays PENDING.",
    "outage-exhausts-restarts": "Each RunTask ECS refuses counts as a crash: an outage uses up the restart policy.",
    "lb-no-health-check": "The load balancer keeps a target that fails its health checks in rotation.",
    "api-target-not-replaced": "An API target that dies is never replaced: the API runs on fewer targets for good.",
    "lb-not-restarted": "A load balancer that fails is not brought back: the API stays unreachable.",
    "endless-restarts": "A container that keeps crashing is restarted forever: the restart policy has no limit.",
    "workspace-deleted-with-session": "Deleting a session deletes the user's workspace with it.",
    "shared-workspace": "Workspaces are per client, not per user: users of one client see each other's files.",
    "expired-record-left-running": "The reaper stops an expired session's container but leaves its record RUNNING.",
    "idle-from-container-clock": "Idleness is judged by the container's clock, so a container running ahead stops it.",
    "ended-session-retryable": "File calls to a FAILED or STOPPED session answer 503 + Retry-After instead of 409.",
    "unchecked-ids": "userId and clientId are not checked: any string (spaces, '/', '..') names a workspace.",
    "overload-as-outage": "A busy store is answered 503 store_unavailable instead of 429 overloaded.",
    "scale-in-below-load": "A scale-in cuts two steps at once, below the running sessions; scale-out repairs it later.",
    "capacity-refuses-early": "Creates are refused with 429 at half the capacity ceiling: half the slots never fill.",
    "idle-from-skewed-clock": "Idleness compares the skewed platform clock with activity stamped on the host's clock.",
    "overwrite-keeps-tail": "A write reuses the old file without truncating it: a shorter overwrite keeps its tail.",
    "stale-read-cache": "The container caches file reads and serves the first version read after an overwrite.",
    "binary-mangled": "File contents pass through text decoding: bytes that are not UTF-8 are replaced.",
    "path-escapes-to-client-folder": "'..' is checked against the client folder: a path reaches other users' files.",
    "lenient-create-body": "A create coerces a numeric userId or clientId to text and ignores the Content-Type.",
    "scale-out-busy-wait": "A new container polls without sleeping for its first seconds: a core each while it scales.",
    "workspace-io-blocked-while-starting": "A container start locks the file system: every workspace waits for it.",
    "slow-warm-start": "A start from the warm pool re-initialises the agent: 0.5 s more (about 15x the usual).",
    "slow-create": "POST /sessions takes 0.5 s more (5x the local creation mean bound).",
    "slow-create-outliers": "Every fifth POST /sessions takes 0.75 s more (3x the local per-call bound).",
    "slow-file-ops": "Every file GET/PUT in a container takes 0.25 s more (5x the local file-operation p95 bound).",
    "slow-api": "GET /sessions/{id} takes 0.25 s more (5x the local API p95 bound).",
    "cpu-hog": "Every session container spins a runaway hashing thread that burns 80 % of its CPU quota.",
    "memory-hog": "A container's file cache is sized to 90 % of its memory limit and grows to it with use.",
    "collapse-under-load": "Past 2 requests in flight the API serialises them, 6 ms each: fine at 1x, collapses at 3x.",
    "collapse-under-concurrency": "With more than 2 sessions busy, file calls are served one at a time, 15 ms each.",
    "slow-at-sustained-rate": "A new session waits 1.5 s per session stopped in the last minute (at most 6 s).",
    "restart-renews-session": "A restart writes the record afresh: createdAt and expiresAt start over (TTL escaped).",
    "stuck-sessions-kept": "The reaper never ends a start nobody carries out: such a session stays STARTING for good.",
    "stuck-ended-early": "The reaper ends a start it does not carry out after 1 s, not start_timeout: cut short.",
    "ecs-in-file-path": "Each file call asks ECS where the task runs, retrying 1.5 s through an outage: files stall.",
    "updated-at-frozen": "Transitions leave updatedAt at the create time: the record never says when it changed.",
}


@dataclass
class Settings:
    """Every tunable of the platform. Times are seconds, sizes bytes."""

    # Containers (ECS tasks)
    cold_start_delay: float = 0.25  # image pull before the process starts
    app_init_delay: float = 0.3  # agent start-up work before it reports ready
    warm_pool_size: int = 2
    start_timeout: float = 10.0  # a session still starting after this is stuck
    restart_max: int = 5  # restarts allowed within restart_window before FAILED
    restart_window: float = 60.0
    restart_backoff_base: float = 0.1
    restart_backoff_max: float = 2.0
    container_memory_limit: int = 256 * 1024 * 1024
    mesh_proxy: bool = True  # route API -> container through a fault-proxy hop per session
    container_cpu_quota: float = 1.0  # cores (a 1 vCPU Fargate task)
    container_call_timeout: float = 3.0  # the API's wait for a container's answer; then 503 container_unavailable
    # The load balancer (an ALB) in front of the API targets (the API service's tasks)
    api_targets: int = 2
    lb_health_interval: float = 0.5  # seconds between health checks of a target (ALB: 5-300 s)
    lb_health_timeout: float = 0.4  # a health check without an answer by then failed
    lb_healthy_threshold: int = 2  # passed checks in a row before a target takes traffic again
    lb_unhealthy_threshold: int = 2  # failed checks in a row before a target leaves rotation
    lb_target_timeout: float = 10.0  # a target's answer later than this is 504 (the ALB's idle timeout)
    # Capacity and auto-scaling (ECS service + Application Auto Scaling)
    min_capacity: int = 8
    max_capacity: int = 24  # the ceiling: max concurrent containers
    scale_out_step: int = 4
    scale_out_delay: float = 1.0  # seconds demand must exceed capacity before a step
    scale_in_delay: float = 10.0
    max_pending: int = 8  # sessions allowed to wait for capacity; beyond that: 429
    retry_after: int = 1  # seconds, sent with 429/503
    # Lifecycle
    session_ttl: float = 3600.0
    idle_timeout: float = 120.0
    reaper_interval: float = 1.0
    activity_flush_interval: float = 2.0
    # DynamoDB client (botocore standard retry mode)
    store_max_attempts: int = 3  # total, first try included
    store_connect_timeout: float = 0.5
    store_read_timeout: float = 1.0
    store_max_concurrency: int = 8  # DynamoDB calls in flight at once (0: no limit); moto serves one at a time
    store_queue_timeout: float = 0.25  # an API request waits this long for a store slot, then 429 overloaded
    breaker_threshold: int = 3  # failed DynamoDB calls in a row that open the circuit (not slow ones)
    breaker_cooldown: float = 2.0  # seconds the circuit stays open before a trial call
    # CloudWatch publishing
    metrics_interval: float = 5.0
    # The AWS face (docs/aws-emulation.md): ECS and FIS APIs over the containers, for the aws-emulated profile
    aws_face: bool = False
    ecs_stop_timeout: float = 2.0  # StopTask's SIGTERM -> SIGKILL wait (the task definition's stopTimeout)
    ecs_connect_timeout: float = 1.0  # the platform's ECS client: a call to an unreachable ECS fails after this
    # Names, as on AWS
    table_name: str = "testbed-sessions"
    cluster_name: str = "testbed-cluster"
    service_name: str = "session-service"
    region: str = "us-east-1"
    defects: list[str] = field(default_factory=list)

    def has(self, defect: str) -> bool:
        """True when the named defect switch is on."""
        return defect in self.defects

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Settings:
        return cls(**json.loads(text))

    @classmethod
    def load(cls, path: Path) -> Settings:
        return cls.from_json(path.read_text())


class SettingsError(ValueError):
    """A setting or defect name given by the user is not valid."""


def _coerce(name: str, raw: str) -> object:
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    if name not in fields or name == "defects":
        raise SettingsError(f"unknown setting {name!r}; known: {', '.join(sorted(set(fields) - {'defects'}))}")
    default = getattr(Settings(), name)
    try:
        if isinstance(default, bool):
            return raw.lower() in ("1", "true", "yes", "on")
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
    except ValueError:
        raise SettingsError(f"setting {name!r} needs a {type(default).__name__}, got {raw!r}") from None
    return raw


def build_settings(overrides: list[str], defects: list[str], env: dict[str, str] | None = None) -> Settings:
    """Defaults, then ``TESTBED_*`` environment variables, then ``key=value`` overrides; defects validated."""
    env = os.environ if env is None else env
    settings = Settings()
    for f in dataclasses.fields(Settings):
        key = f"TESTBED_{f.name.upper()}"
        if f.name != "defects" and key in env:
            setattr(settings, f.name, _coerce(f.name, env[key]))
    for item in overrides:
        if "=" not in item:
            raise SettingsError(f"--set needs key=value, got {item!r}")
        name, raw = item.split("=", 1)
        setattr(settings, name.strip(), _coerce(name.strip(), raw.strip()))
    env_defects = [d for d in env.get("TESTBED_DEFECTS", "").split(",") if d.strip()]
    for name in [*env_defects, *defects]:
        name = name.strip()
        if name not in DEFECTS:
            raise SettingsError(f"unknown defect {name!r}; known: {', '.join(DEFECTS)}")
        if name not in settings.defects:
            settings.defects.append(name)
    if settings.min_capacity > settings.max_capacity:
        raise SettingsError("min_capacity must not exceed max_capacity")
    return settings
