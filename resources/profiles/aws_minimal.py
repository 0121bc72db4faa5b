"""Profile ``aws-minimal``: the aws profile, pointed at the minimal deployment on this machine.

``./run.sh suite --profile aws-minimal`` starts ``python -m minimal_deployment up`` (a session service written from
``docs/deployment-contract.md`` alone: DynamoDB records and one ECS task per session on moto, workspaces in a local
folder; ``docs/aws.md``, "A minimal deployment written from the contract") and runs the suites with this file.
Everything the aws profile says holds: target ``aws``, the AWS backends only. What differs:

- the deployment's names and endpoints come from the minimal deployment's ``endpoints.json``;
- boto3 reaches every AWS service at the deployment's moto server, with moto's dummy credentials (nothing reaches
  AWS);
- chaos is allowed (``ENVIRONMENT_NAME`` is ``minimal``) on the run's own sessions only (``CHAOS_SCOPE`` ``sessions``):
  the deployment has no API tier of its own (``API_ECS_SERVICE`` empty) and no FIS (``FIS_ROLE_ARN`` empty), so the
  tests that need them skip and say so; the crash tests crash a container by ECS StopTask (``CRASH_SIGNAL``
  ``SIGTERM``);
- the restart budget (``RESTART_MAX``) is the deployment's own, read from its endpoints file;
- deadlines and SLAs are the local profile's: the deployment runs on this machine.
"""

import json
import os
import runpy
from pathlib import Path

_HERE = Path(__file__).resolve().parent
_PROJECT = _HERE.parents[1]
_AWS = runpy.run_path(str(_HERE / "aws.py"))
_LOCAL = runpy.run_path(str(_HERE / "local.py"))
globals().update({k: v for k, v in _AWS.items() if k.isupper()})

# Names whose value is the local profile's: deadlines, SLAs and the sizes of load and chaos steps.
_FROM_LOCAL = [
    k
    for k in _LOCAL
    if k.isupper()
    and k.endswith(("_TIMEOUT", "_MAX", "_P95", "_P99", "_MEAN", "_TOLERANCE", "_WINDOW", "_SKEW", "_MARGIN"))
]
globals().update({k: _LOCAL[k] for k in [*_FROM_LOCAL, "POLL_INTERVAL", "START_SAMPLES", "CONCURRENT_SESSIONS"]})

PROFILE = "aws-minimal"
TARGET = "aws"

# Where run.sh started the minimal deployment (python -m minimal_deployment up --state <this>).
MINIMAL_STATE_DIR = os.environ.get("AWS_MINIMAL_STATE") or str(_PROJECT / "results" / "aws-minimal-deployment")
try:
    _DEPLOYMENT = json.loads((Path(MINIMAL_STATE_DIR) / "endpoints.json").read_text(encoding="utf-8"))
except (OSError, ValueError):
    _DEPLOYMENT = {}  # not started: every AWS name below is empty, and the keywords that need one say which

PLATFORM_STATE_DIR = str(_PROJECT / "results" / "aws-minimal")
METRICS_DIR = str(_PROJECT / "results" / "aws-minimal" / "metrics")
# Loopback and moto's dummy credentials (aws/session.AwsSettings), as for the emulated deployment.
AWS_EMULATED = True
AWS_REGION = _DEPLOYMENT.get("AWS_REGION", "us-east-1")
AWS_PROFILE = ""
ENVIRONMENT_NAME = "minimal"
_MOTO = _DEPLOYMENT.get("AWS_ENDPOINT_URL", "")
AWS_ENDPOINT_URLS = {
    service: _MOTO
    for service in ("ecs", "dynamodb", "cloudwatch", "sts", "fis", "elbv2", "efs", "application-autoscaling")
}
ECS_CLUSTER = _DEPLOYMENT.get("ECS_CLUSTER", "")
ECS_SERVICE = _DEPLOYMENT.get("ECS_SERVICE", "")
ECS_TASK_FAMILY = _DEPLOYMENT.get("ECS_TASK_FAMILY", "")
ECS_SESSION_TAG = "sessionId"
ECS_TASK_ID_FORM = "arn"
ECS_MIN_SCAN_INTERVAL = "50 ms"
SESSIONS_TABLE = _DEPLOYMENT.get("SESSIONS_TABLE", "")
ALB_URL = _DEPLOYMENT.get("ALB_URL", "")
PLATFORM_API_URL = ALB_URL
API_ECS_SERVICE = ""
API_TARGET_GROUP_ARN = ""
API_CONTAINER_PORT = 0
ALB_TARGET_GROUP_ARN = ""
TOXIPROXY_URL = ""
TOXIPROXY_LISTEN = ""
FAULT_PROXY_URL = ""
DYNAMODB_ENDPOINT_URL = _MOTO
# No FIS: an instant SIGKILL (FIS aws:ecs:task-kill-process) and the FIS faults skip with that reason.
FIS_ROLE_ARN = ""
FIS_STOP_ALARM_ARN = ""
SESSION_PROCESS_NAME = ""
CHAOS_ALLOWED = True
CHAOS_DRY_RUN = False
CHAOS_SCOPE = "sessions"
# No FIS: the tests that need a crash crash a task with ECS StopTask (the contract's "killing" a container).
CRASH_SIGNAL = "SIGTERM"
# The deployment's restart policy (python -m minimal_deployment up --restart-max N).
RESTART_MAX = int(_DEPLOYMENT.get("RESTART_MAX", _AWS["RESTART_MAX"]))
CHAOS_ROUND_TRIPS = _LOCAL["CHAOS_ROUND_TRIPS"]
CHAOS_STRESSED_ROUND_TRIP_ALLOWANCE = _LOCAL["CHAOS_STRESSED_ROUND_TRIP_ALLOWANCE"]
CHAOS_THROTTLED_ROUND_TRIP_ALLOWANCE = _LOCAL["CHAOS_THROTTLED_ROUND_TRIP_ALLOWANCE"]
CHAOS_UNAFFECTED_ROUND_TRIP_ALLOWANCE = _LOCAL["CHAOS_UNAFFECTED_ROUND_TRIP_ALLOWANCE"]
CHAOS_SLOW_MESH_ALLOWANCE = _LOCAL["CHAOS_SLOW_MESH_ALLOWANCE"]
CHAOS_SLOW_STORE_ALLOWANCE = _LOCAL["CHAOS_SLOW_STORE_ALLOWANCE"]
