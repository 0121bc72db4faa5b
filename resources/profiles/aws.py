"""Profile ``aws``: the platform as deployed on AWS, with the SLAs of the original requirements.

Use it with ``./run.sh suite --profile aws`` (``--variablefile resources/profiles/aws.py``). It defines every
name of ``local.py`` so that nothing of the local profile leaks through, plus the AWS endpoints and names.

Every name of the deployment is read from an environment variable of the same name, so CI and users point the
profile at their deployment without editing it (``docs/aws.md`` lists them); an empty one makes the keywords
that need it fail with a message naming it. Credentials never go here: boto3's default chain supplies them
(environment, ``AWS_PROFILE``/SSO, or the role of the machine), and they are never logged.
"""

import os
from pathlib import Path

from robot.api.types import Secret

_PROJECT = Path(__file__).resolve().parents[2]

PROFILE = "aws"
TARGET = "aws"

# --- The embedded platform is not used on AWS; kept so the local values never leak through ---------------
PLATFORM_STATE_DIR = str(_PROJECT / "results" / "aws")
PLATFORM_UP_OPTIONS = []
PLATFORM_START_TIMEOUT = "60 s"
PLATFORM_STOP_TIMEOUT = "30 s"

# --- Where the platform is: every value from the environment variable of the same name --------------------
AWS_REGION = os.environ.get("AWS_REGION", "us-east-1")
# Optional shared-config profile (SSO or role); empty: boto3's default credential chain. No keys in this file.
AWS_PROFILE = os.environ.get("AWS_PROFILE", "")
# A name for the environment, checked by the production guard of the chaos keywords ("prod", "prd" ... refuse).
ENVIRONMENT_NAME = os.environ.get("ENVIRONMENT_NAME", "")
ECS_CLUSTER = os.environ.get("ECS_CLUSTER", "")
# The ECS service that runs the session containers (its tasks without a session are the warm pool).
ECS_SERVICE = os.environ.get("ECS_SERVICE", "")
# Optional: only tasks of this task definition family count as session containers.
ECS_TASK_FAMILY = os.environ.get("ECS_TASK_FAMILY", "")
# The tag that ties a task to its session (or startedBy=<session id>; docs/deployment-contract.md).
ECS_SESSION_TAG = os.environ.get("ECS_SESSION_TAG", "sessionId")
# What the platform stores as a session's taskId: the task "arn" or its short "id".
ECS_TASK_ID_FORM = os.environ.get("ECS_TASK_ID_FORM", "arn")
SESSIONS_TABLE = os.environ.get("SESSIONS_TABLE", "")
EFS_FILE_SYSTEM_ID = os.environ.get("EFS_FILE_SYSTEM_ID", "")
# The ALB in front of the API, and its target group (or the ALB's ARN, whose target groups are all checked).
ALB_URL = os.environ.get("ALB_URL", "")
ALB_TARGET_GROUP_ARN = os.environ.get("ALB_TARGET_GROUP_ARN", "")
ALB_ARN = os.environ.get("ALB_ARN", "")
# Optional: the API tier (docs/deployment-contract.md, "The API tier"). The ECS service in ECS_CLUSTER that runs the
# API behind the ALB, the target group it registers its tasks in (empty: the one the service names) and the API
# container's port (0: the service's load balancer port). Without API_ECS_SERVICE the API-tier chaos tests skip.
API_ECS_SERVICE = os.environ.get("API_ECS_SERVICE", "")
API_TARGET_GROUP_ARN = os.environ.get("API_TARGET_GROUP_ARN", "")
API_CONTAINER_PORT = int(os.environ.get("API_CONTAINER_PORT", "0") or 0)
# Network chaos between the suite and the ALB: a Toxiproxy server (admin API) and the address of its hop "api"
# to the ALB (`Ensure ALB Hop On Toxiproxy` creates it). With both set, the suite's requests take the hop.
TOXIPROXY_URL = os.environ.get("TOXIPROXY_URL", "")
TOXIPROXY_LISTEN = os.environ.get("TOXIPROXY_LISTEN", "")
FAULT_PROXY_URL = TOXIPROXY_URL
_ALB_SCHEME = ALB_URL.split("://", 1)[0] if "://" in ALB_URL else "http"
PLATFORM_API_URL = os.environ.get("PLATFORM_API_URL") or (
    f"{_ALB_SCHEME}://{TOXIPROXY_LISTEN}" if TOXIPROXY_URL and TOXIPROXY_LISTEN else ALB_URL
)
# Authentication to the session API (docs/deployment-contract.md): a token from the environment, kept as a Robot
# Secret so Robot never logs it, sent in API_AUTH_HEADER after API_AUTH_SCHEME (empty scheme: the bare token, as
# for an "x-api-key" header). TLS: API_CA_BUNDLE (a PEM file) or API_VERIFY_TLS=false for a self-signed test ALB.
# "sigv4": sign every API request with the run's AWS credentials (API Gateway with IAM auth) for API_SIGV4_SERVICE.
API_AUTH = os.environ.get("API_AUTH", "")
API_SIGV4_SERVICE = os.environ.get("API_SIGV4_SERVICE", "execute-api")
# How the deployment's API names paths, fields and statuses differently (a JSON file; docs/deployment-contract.md).
API_CONTRACT_FILE = os.environ.get("API_CONTRACT_FILE", "")
API_TOKEN = Secret(os.environ["API_TOKEN"]) if os.environ.get("API_TOKEN") else ""
API_AUTH_HEADER = os.environ.get("API_AUTH_HEADER", "Authorization")
API_AUTH_SCHEME = os.environ.get("API_AUTH_SCHEME", "Bearer")
API_CA_BUNDLE = os.environ.get("API_CA_BUNDLE", "")
API_VERIFY_TLS = os.environ.get("API_VERIFY_TLS", "true").strip().lower() not in ("0", "false", "no", "off")
# Runners on several machines against one deployment take turns through a DynamoDB table (string hash key
# "lockId"); empty: a file lock on this machine only. A holder that dies frees the deployment after the lease.
PLATFORM_LOCK_TABLE = os.environ.get("PLATFORM_LOCK_TABLE", "")
PLATFORM_LOCK_LEASE = os.environ.get("PLATFORM_LOCK_LEASE", "30 min")
# Empty: boto3's default endpoint (AWS_ENDPOINT_URL_DYNAMODB still applies).
DYNAMODB_ENDPOINT_URL = ""
# The API tasks' traffic to DynamoDB, as the sources of FIS aws:ecs:task-network-packet-loss / -latency (docs/aws.md,
# "Chaos on the route to DynamoDB"): DYNAMODB (FIS's name for the Regional endpoint), the endpoint's domain
# (dynamodb.<region>.amazonaws.com), or the addresses of a VPC interface endpoint; comma-separated, no spaces.
DYNAMODB_FAULT_SOURCES = os.environ.get("DYNAMODB_FAULT_SOURCES", "DYNAMODB").strip() or "DYNAMODB"
# The API tasks' traffic to ECS (the platform's container control plane: RunTask, StopTask, UpdateService), as the
# sources of FIS aws:ecs:task-network-packet-loss (docs/aws.md, "Chaos on the route to ECS"): the Regional endpoint's
# domain (FIS has no keyword for ECS), or the addresses of a VPC interface endpoint; comma-separated, no spaces.
ECS_FAULT_SOURCES = os.environ.get("ECS_FAULT_SOURCES", "").strip() or f"ecs.{AWS_REGION}.amazonaws.com"
# The platform's route to CloudWatch (docs/deployment-contract.md, "The route to CloudWatch"): the ECS service whose
# tasks publish the platform's metrics (default: the API service), their traffic to CloudWatch as FIS sources (default
# CloudWatch's Regional endpoint, monitoring.<region>.amazonaws.com; or a VPC interface endpoint's addresses), and the
# metric those tasks publish that shows the metrics flowing again: namespace, name, dimensions as Name=Value pairs
# separated by commas. The contract promises no metric: without one named, the CloudWatch outage test skips.
METRICS_ECS_SERVICE = os.environ.get("METRICS_ECS_SERVICE", "").strip() or API_ECS_SERVICE
CLOUDWATCH_FAULT_SOURCES = (
    os.environ.get("CLOUDWATCH_FAULT_SOURCES", "").strip() or f"monitoring.{AWS_REGION}.amazonaws.com"
)
PLATFORM_METRIC_NAMESPACE = os.environ.get("PLATFORM_METRIC_NAMESPACE", "")
PLATFORM_METRIC_NAME = os.environ.get("PLATFORM_METRIC_NAME", "")
PLATFORM_METRIC_DIMENSIONS = os.environ.get("PLATFORM_METRIC_DIMENSIONS", "")

# --- Chaos on AWS: FIS and the safety guards ----------------------------------------------------------------
# The role FIS acts with, and the CloudWatch alarm that stops an experiment (required unless CHAOS_DRY_RUN).
FIS_ROLE_ARN = os.environ.get("FIS_ROLE_ARN", "")
FIS_STOP_ALARM_ARN = os.environ.get("FIS_STOP_ALARM_ARN", "")
# The session's process inside its task (e.g. node, java): FIS aws:ecs:task-kill-process sends it SIGKILL.
SESSION_PROCESS_NAME = os.environ.get("SESSION_PROCESS_NAME", "")
# Faults are refused unless allowed; a dry run validates experiments (FIS actionsMode=skip-all), injects nothing.
CHAOS_ALLOWED = os.environ.get("CHAOS_ALLOWED", "false").strip().lower() in ("1", "true", "yes", "on")
CHAOS_DRY_RUN = os.environ.get("CHAOS_DRY_RUN", "false").strip().lower() in ("1", "true", "yes", "on")
# Two blast radii (docs/chaos.md): "sessions" faults only this run's own session tasks; "deployment" also lets the
# faults on the deployment itself run (its API tier: a task stopped, a port black-holed), each only while the test
# holds the deployment exclusively and with FIS_STOP_ALARM_ARN set, also in a dry run.
CHAOS_SCOPE = os.environ.get("CHAOS_SCOPE", "sessions").strip().lower() or "sessions"
# Chaos in an environment named like production needs --variable FORCE_CHAOS_IN_PRODUCTION:true (never an env).
FORCE_CHAOS_IN_PRODUCTION = False
FIS_START_TIMEOUT = "5 min"
# The longest a fault injected through FIS lasts when nothing reverts it (the test stops it earlier).
FIS_FAULT_DURATION = "10 min"
FIS_EXPERIMENT_TIMEOUT = "30 min"
ALB_HEALTH_TIMEOUT = "5 min"
# A scan of the cluster's tasks younger than this is reused, to stay below ECS's API rate limits.
ECS_MIN_SCAN_INTERVAL = "500 ms"

# Chaos suites: client timeout per attempt, fail-fast bound, clock skew, boundary margin, fault window.
CHAOS_CLIENT_TIMEOUT = "10 s"
CHAOS_FAIL_FAST_MAX = "2 s"
# The slowest answer a request may get while the platform's DynamoDB calls meet no answer (an outage before the
# circuit opens, lost connections): the deployment's DynamoDB client bounds it (its attempts, each waiting out its
# timeouts, and the backoff between them). An assumption, not a promise of the contract: set it from your client's
# settings (botocore's default read timeout alone is 60 s, far past it).
CHAOS_STORE_ANSWER_MAX = os.environ.get("PLATFORM_STORE_ANSWER_MAX", "30 s")
CHAOS_CLOCK_SKEW = "5 min"
CHAOS_TIME_MARGIN = "1 min"
CHAOS_OBSERVATION_WINDOW = "30 s"
# Stopwatches under a fault: bounded by the same operation timed just before the fault in the same test, plus what
# the fault adds, plus these allowances (names and meaning as in local.py). On AWS a round trip crosses the ALB and
# the task's network, and FIS stress shares a Fargate task's vCPU, so the allowances are wider; FIS
# task-network-latency delays every packet of the task, so a request on a new connection may pay the delay twice
# (handshake and answer): the mesh allowance covers a second delay of the 600 ms the suite injects. The throttled
# and slow-store tests need the embedded platform (cgroups, the DynamoDB hop) and skip on AWS.
CHAOS_ROUND_TRIPS = 20
CHAOS_STRESSED_ROUND_TRIP_ALLOWANCE = "3 s"
CHAOS_THROTTLED_ROUND_TRIP_ALLOWANCE = "3 s"
CHAOS_UNAFFECTED_ROUND_TRIP_ALLOWANCE = "2 s"
CHAOS_SLOW_MESH_ALLOWANCE = "2 s"
CHAOS_SLOW_STORE_ALLOWANCE = "1 s"

# --- Waiting ------------------------------------------------------------------------------------------------
HTTP_TIMEOUT = "30 s"
POLL_INTERVAL = "1 s"
SESSION_START_TIMEOUT = "3 min"
SESSION_STOP_TIMEOUT = "3 min"
# A session left on its way (STARTING, RESTARTING...) after a fault must be RUNNING, FAILED or gone by then.
SESSION_SETTLE_TIMEOUT = "10 min"
# API and DynamoDB are read a moment apart; they may straddle a transition for this long.
VIEWS_SETTLE_TIMEOUT = "30 s"
# A file call shows in the session's lastActivityAt within this (judged only where lastActivityAt is promised).
SESSION_ACTIVITY_TIMEOUT = "2 min"
# How long a test gives the platform to react to an injected fault before it looks at the outcome.
FAULT_REACTION_TIMEOUT = "3 min"
CONTAINER_APPEAR_TIMEOUT = "3 min"
RECOVERY_TIMEOUT = "5 min"
ORPHAN_GRACE_TIMEOUT = "5 min"
PLATFORM_LOCK_TIMEOUT = "60 min"

# --- Load ---------------------------------------------------------------------------------------------------
CONCURRENT_SESSIONS = 20
CONCURRENT_REQUEST_TIMEOUT = "60 s"

# --- SLAs (from the original requirements) -----------------------------------------------------------------
# How long a target failing its health checks may stay in the load balancer's rotation (an ALB's default:
# 30 s interval x 2 failed checks + a 5 s check timeout, and a margin).
LB_DETECTION_TIMEOUT = "75 s"
# Restarts a crashing session gets before it is FAILED (the deployment's restart policy within its window).
RESTART_MAX = int(os.environ.get("RESTART_MAX", "5") or 5)
SLA_RECOVERY_MAX = "2 min"
# The suite's recovery time and the platform's own record (lastRecoveryMs) must agree this closely.
RECOVERY_TIME_TOLERANCE = "15 s"
SLA_COLD_START_P99 = "60 s"
SLA_WARM_START_P95 = "5 s"
SLA_CREATE_MEAN = "2 s"
# Every single create, not only their mean. Not in the seed, which names a mean only: the team's per-call
# limit is 2.5 times the seed's mean, so one create may be slow but none may take as long as a cold start.
SLA_CREATE_MAX = "5 s"
SLA_FILE_OPS_P95 = "1 s"
SLA_API_P95 = "500 ms"
# lastFailureReason's word for a stop by SIGKILL / SIGTERM: not checked (empty). docs/deployment-contract.md promises
# that the platform records a reason, not its wording (on ECS a StopTask's reason is the caller's); name your
# platform's words here (e.g. "exit code 137") to have the recovery suite check them.
SIGKILL_FAILURE_REASON = ""
SIGTERM_FAILURE_REASON = ""
# How the recovery tests that need a crash, not a signal, crash a session's task: SIGKILL (FIS
# aws:ecs:task-kill-process, which needs FIS_ROLE_ARN and SESSION_PROCESS_NAME), or SIGTERM (ECS StopTask) on a
# deployment without FIS, where those tests would otherwise skip. The SIGKILL test itself needs FIS either way.
CRASH_SIGNAL = os.environ.get("CRASH_SIGNAL", "SIGKILL").strip().upper() or "SIGKILL"
# The deployment contract names no stoppedReason wording: not checked unless a deployment's is named here.
RESTART_BUDGET_STOPPED_REASON = ""
# A start nobody carries out: the test that writes such a record is skipped on AWS (needs-record-writes: the
# deployment contract does not say how a platform writes its records). Name your platform's values here if you run it.
STUCK_START_TIMEOUT = "10 min"
STUCK_END_ALLOWANCE = "2 min"
STUCK_STOPPED_REASON = ""
# The session fields docs/deployment-contract.md promises, judged before and after each transition with the meaning
# docs/platform-contract.md gives them. expiresAt is left out: the contract names it as the TTL attribute but does not
# promise it fixed (a deployment may renew it on activity). Add the fields your platform promises (createdAt,
# updatedAt, lastActivityAt, version, userId, clientId ...) to have them judged too.
SESSION_FIELDS_PROMISED = [
    "sessionId",
    "status",
    "taskId",
    "startType",
    "startDurationMs",
    "restartCount",
    "lastFailureReason",
    "lastRecoveryMs",
]

# --- Load, stress and performance ---------------------------------------------------------------------------------
LOAD_MAX_VUS = 200
LOAD_LATE_THRESHOLD = "10 ms"
LOAD_PROGRESS_INTERVAL = "30 s"
NORMAL_API_RATE = "20/s"
STRESS_LOAD_FACTOR = 3
STRESS_DURATION = "5 min"
NORMAL_FILE_OPS_RATE = "5/s"
NORMAL_SESSION_RATE = "10/min"
SUSTAINED_SESSION_RATE = "10/min"
SUSTAINED_DURATION = "10 min"
FILE_OPS_RATE = "100/s"
FILE_OPS_DURATION = "2 min"
CONCURRENT_USERS = 3
CONCURRENT_DURATION = "5 min"
CONCURRENT_PACE = "1 s"
RAPID_CREATE_RATE = "1/s"
RAPID_CREATE_DURATION = "10 s"
START_SAMPLES = 10
CREATE_RATE = "1/s"
CREATE_DURATION = "20 s"
LATENCY_RUN_DURATION = "1 min"
# No private platforms on AWS: these suites take the deployed platform to themselves instead, so the settings
# lists are empty and the limits below must match the deployment.
EXHAUSTION_PLATFORM = []
EXHAUSTION_CREATE_RATE = "5/s"
EXHAUSTION_DURATION = "1 min"
EXHAUSTION_ACCEPT_MAX = int(os.environ.get("PLATFORM_MAX_SESSIONS", "100"))
# Slots the deployment may leave empty when demand exceeds its ceiling (README, "Both bounds"): sessions of real
# users on a shared deployment, or a waiting queue shorter than the scale-out, can hold the ceiling out of reach.
CAPACITY_FILL_ALLOWANCE = int(os.environ.get("PLATFORM_CAPACITY_FILL_ALLOWANCE", "0"))
SCALING_PLATFORM = []
SCALING_LOAD_STEP = int(os.environ.get("PLATFORM_SCALING_LOAD_STEP", "20"))
SCALING_CEILING = int(os.environ.get("PLATFORM_MAX_SESSIONS", "100"))
SCALING_STEP_RATE = "5/s"
# EFS throughput while the deployment scales: one session's file operations at its normal rate through a load step.
SCALING_IO_RATE = NORMAL_FILE_OPS_RATE
SCALING_IO_DURATION = "2 min"
SCALING_SETTLE_DURATION = "1 min"  # the new sessions' first file operations, sampled with the scale-out
SCALING_IO_STEP = int(os.environ.get("PLATFORM_SCALING_LOAD_STEP", "20"))
SCALING_IO_THROUGHPUT_MIN = "4.75/s"  # 95 % of the rate, as on the local profile
SCALE_OUT_TIMEOUT = "10 min"
# The deployment's minimum (its Application Auto Scaling MinCapacity) and how long a scale-in back to it may take.
SCALING_MIN_CAPACITY = int(os.environ.get("PLATFORM_MIN_CAPACITY", "1"))
SCALE_IN_TIMEOUT = "30 min"
IDLE_PLATFORM = []
IDLE_SESSIONS = 2
IDLE_SHUTDOWN_WAIT = "40 min"
START_PLATFORM = []
LEAK_PLATFORM = []
LEAK_CREATE_RATE = "1/s"
LEAK_DURATION = "30 s"
# Under 3x the normal mix: at most STRESS_SLA_FACTOR times the normal p95 bounds (SLA_API_P95, SLA_FILE_OPS_P95).
STRESS_SLA_FACTOR = 2
SLA_STRESS_API_P95 = "1 s"
SLA_STRESS_MIX_FILE_OPS_P95 = "2 s"
SLA_STRESS_FILE_OPS_P95 = "2 s"
LOAD_ERROR_RATE_MAX = "1 %"
LOAD_DROPPED_MAX = "1 %"
SLA_SESSION_CYCLE_P95 = "3 min"
SLA_SCALE_OUT_MAX = "5 min"
SLA_AUTO_SHUTDOWN_MAX = "35 min"
CPU_UTILISATION_MAX_PERCENT = 70
MEMORY_UTILISATION_MAX_PERCENT = 80

# --- Cost per session (seed: "cost per session < $0.25"; suites/performance/session_cost.robot) ----------------
# A typical session: a user keeps it this long, in one Fargate task of this size (the task definition's cpu and
# memory), priced with today's set of this dated price file (env AWS_PRICING_FILE, else resources/pricing_aws.json).
# The asserted cost is the measured billed time of a session beyond its active use plus this duration, priced.
COST_BUDGET_PER_SESSION = 0.25
TYPICAL_SESSION_DURATION = "1 h"
TASK_VCPU = 1.0
TASK_MEMORY_GB = 2.0
PRICING_FILE = os.environ.get("AWS_PRICING_FILE") or str(_PROJECT / "resources" / "pricing_aws.json")
# No private platform on AWS: the cost test runs one session of its own on the shared deployment.
COST_PLATFORM = []

# --- Results ------------------------------------------------------------------------------------------------
METRICS_DIR = str(_PROJECT / "results" / "metrics")

# --- Measuring on a quiet machine (tests tagged `measurement`; README "Measurements") ---------------------------
# Before a measurement the suite times keep-alive round trips to a trivial local server (the reference); during it,
# it counts the CPU that processes other than the test's own (its robot process and the platform it measures) use,
# steal time included. Past either limit the machine is too busy to measure: the test skips with both figures.
# A quiet 2-core machine gives a reference p50 of 0.1-0.3 ms and under 0.05 cores of others' CPU.
MEASURE_REFERENCE_ROUND_TRIPS = 200
MEASURE_REFERENCE_P50_MAX = "1 ms"
MEASURE_FOREIGN_CPU_MAX = 0.3
# On AWS the platform runs on its own machines, but the load generator runs here: a runner whose CPU the run fills
# sends late and reads answers late, so latency then measures the runner (see local.py).
MEASURE_SATURATION_MAX = "85 %"
