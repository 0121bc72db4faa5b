"""Profile ``aws-emulated``: the aws profile, pointed at the embedded platform's AWS face on this machine.

``./run.sh suite --profile aws-emulated`` starts the embedded platform with its AWS face (``python -m testbed up
--aws-face``: ECS and FIS APIs over its real processes, moto for DynamoDB, CloudWatch and STS; docs/aws-emulation.md)
and runs the suites with this file. Everything the aws profile says holds: target ``aws``, the AWS backends only
(ECS tasks, FIS experiments, DynamoDB records, CloudWatch alarms), no process table, no cgroup, no fault-proxy API
from the suite. What differs:

- the deployment's names and endpoints come from the emulated deployment's ``endpoints.json``;
- chaos is allowed (``ENVIRONMENT_NAME`` is ``emulated``), with the FIS role and stop alarm the deployment made, and
  on the deployment too (``CHAOS_SCOPE`` ``deployment``: the run owns this deployment, so its API tier may be faulted);
- boto3 reaches ECS, FIS and ELBv2 at the face and the other services at moto, with moto's dummy credentials;
- deadlines and SLAs are the local profile's: the deployment runs on this machine, so AWS's minutes-long waits would
  only make a run with a defect slow to fail.
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

# Names whose value is the local profile's: deadlines, SLAs and the sizes of load and chaos steps (the per-call
# creation bound SLA_CREATE_MAX among them: it ends in _MAX).
_FROM_LOCAL = [
    k
    for k in _LOCAL
    if k.isupper()
    and k.endswith(("_TIMEOUT", "_MAX", "_P95", "_P99", "_MEAN", "_TOLERANCE", "_WINDOW", "_SKEW", "_MARGIN"))
]
globals().update({k: _LOCAL[k] for k in [*_FROM_LOCAL, "POLL_INTERVAL", "START_SAMPLES", "CONCURRENT_SESSIONS"]})

PROFILE = "aws-emulated"
TARGET = "aws"

# Where run.sh started the emulated deployment (python -m testbed up --aws-face --state <this>).
EMULATED_STATE_DIR = os.environ.get("AWS_EMULATED_STATE") or str(_PROJECT / "results" / "aws-emulated-platform")
_FILE = Path(EMULATED_STATE_DIR) / "endpoints.json"
try:
    _FACE = json.loads(_FILE.read_text(encoding="utf-8"))
except (OSError, ValueError):
    _FACE = {}  # not started: every AWS name below is empty, and the keywords that need one say which

PLATFORM_STATE_DIR = str(_PROJECT / "results" / "aws-emulated")
METRICS_DIR = str(_PROJECT / "results" / "aws-emulated" / "metrics")
AWS_EMULATED = True
AWS_REGION = _FACE.get("AWS_REGION", "us-east-1")
AWS_PROFILE = ""
ENVIRONMENT_NAME = "emulated"
AWS_ENDPOINT_URLS = {
    service: _FACE.get(key, "")
    for service, key in (
        ("ecs", "AWS_FACE_URL"),
        ("fis", "AWS_FACE_URL"),
        ("elbv2", "AWS_FACE_URL"),
        ("dynamodb", "DYNAMODB_ENDPOINT_URL"),
        ("cloudwatch", "CLOUDWATCH_ENDPOINT_URL"),
        ("sts", "DYNAMODB_ENDPOINT_URL"),
    )
}
ECS_CLUSTER = _FACE.get("ECS_CLUSTER", "")
ECS_SERVICE = _FACE.get("ECS_SERVICE", "")
ECS_TASK_FAMILY = "session"
ECS_SESSION_TAG = "sessionId"
ECS_TASK_ID_FORM = "arn"
ECS_MIN_SCAN_INTERVAL = "50 ms"
SESSIONS_TABLE = _FACE.get("SESSIONS_TABLE", "")
ALB_URL = _FACE.get("PLATFORM_API_URL", "")
# The API tier: the face presents the API targets as the tasks of this ECS service behind this target group.
API_ECS_SERVICE = _FACE.get("API_ECS_SERVICE", "")
API_TARGET_GROUP_ARN = _FACE.get("API_TARGET_GROUP_ARN", "")
API_CONTAINER_PORT = 0
ALB_TARGET_GROUP_ARN = API_TARGET_GROUP_ARN
PLATFORM_API_URL = ALB_URL
TOXIPROXY_URL = ""
TOXIPROXY_LISTEN = ""
FAULT_PROXY_URL = ""
DYNAMODB_ENDPOINT_URL = _FACE.get("DYNAMODB_ENDPOINT_URL", "")
# The API tier's DynamoDB as the deployment names it (its Regional endpoint's domain): the sources of the FIS network
# actions on the route to DynamoDB (the face also takes FIS's own DYNAMODB, the aws profile's default).
DYNAMODB_FAULT_SOURCES = _FACE.get("DYNAMODB_ENDPOINT_NAME", "") or "DYNAMODB"
# Its calls to ECS the same way: the Regional ECS endpoint of the face's region (the aws profile's default).
ECS_FAULT_SOURCES = _FACE.get("ECS_ENDPOINT_NAME", "") or f"ecs.{AWS_REGION}.amazonaws.com"
# The platform's metrics leave from the API tier (its one API core publishes them), to CloudWatch's Regional endpoint
# as the deployment names it: the sources of the FIS packet loss on the route to CloudWatch. The metric it publishes
# itself shows them flowing again.
METRICS_ECS_SERVICE = API_ECS_SERVICE
CLOUDWATCH_FAULT_SOURCES = _FACE.get("CLOUDWATCH_ENDPOINT_NAME", "") or f"monitoring.{AWS_REGION}.amazonaws.com"
PLATFORM_METRIC_NAMESPACE = "SessionPlatform"
PLATFORM_METRIC_NAME = "LiveSessions"
PLATFORM_METRIC_DIMENSIONS = f"ServiceName={ECS_SERVICE}"
FIS_ROLE_ARN = _FACE.get("FIS_ROLE_ARN", "")
FIS_STOP_ALARM_ARN = _FACE.get("FIS_STOP_ALARM_ARN", "")
FIS_START_TIMEOUT = "30 s"
FIS_EXPERIMENT_TIMEOUT = "2 min"
# The session's process inside its task, for FIS aws:ecs:task-kill-process: the agent is a Python program.
SESSION_PROCESS_NAME = "python"
CHAOS_ALLOWED = True
CHAOS_DRY_RUN = False
CHAOS_SCOPE = "deployment"
# The chaos stopwatches' allowances are the local profile's: the emulated deployment runs on this machine, so its
# round trips and FIS faults cost what the embedded platform's do (local.py says where the figures come from).
CHAOS_ROUND_TRIPS = _LOCAL["CHAOS_ROUND_TRIPS"]
CHAOS_STRESSED_ROUND_TRIP_ALLOWANCE = _LOCAL["CHAOS_STRESSED_ROUND_TRIP_ALLOWANCE"]
CHAOS_THROTTLED_ROUND_TRIP_ALLOWANCE = _LOCAL["CHAOS_THROTTLED_ROUND_TRIP_ALLOWANCE"]
CHAOS_UNAFFECTED_ROUND_TRIP_ALLOWANCE = _LOCAL["CHAOS_UNAFFECTED_ROUND_TRIP_ALLOWANCE"]
CHAOS_SLOW_MESH_ALLOWANCE = _LOCAL["CHAOS_SLOW_MESH_ALLOWANCE"]
CHAOS_SLOW_STORE_ALLOWANCE = _LOCAL["CHAOS_SLOW_STORE_ALLOWANCE"]
# Rapid creation through a DynamoDB outage at the local profile's rate: the emulated deployment starts a session in a
# fraction of a second, so at AWS's 1/s no create would be half-way through its start when the outage comes.
LEAK_CREATE_RATE = _LOCAL["LEAK_CREATE_RATE"]
LEAK_DURATION = _LOCAL["LEAK_DURATION"]
# The emulated deployment is the embedded platform, which promises every session field of docs/platform-contract.md:
# named here as a QA team names the fields its own platform promises beyond the deployment contract (aws.py), so a
# session's fields over each transition are judged through the AWS path as on the embedded platform.
SESSION_FIELDS_PROMISED = _LOCAL["SESSION_FIELDS_PROMISED"]
