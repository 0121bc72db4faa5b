"""Profile ``aws``: the platform as deployed on AWS, with the SLAs of the original requirements.

Use it with ``./run.sh suite --profile aws`` (``--variablefile resources/profiles/aws.py``). It defines every
name of ``local.py`` so that nothing of the local profile leaks through, plus the AWS endpoints and names.

The endpoint and resource placeholders below (empty strings) are filled in by the AWS issue; until then
keywords that need them fail with a message naming the missing variable. Container keywords need the ECS
backend (``libraries/PlatformLibrary/backends/ecs.py``), which arrives with the same issue.
"""

import os
from pathlib import Path

_PROJECT = Path(__file__).resolve().parents[2]

PROFILE = "aws"
TARGET = "aws"

# --- The embedded platform is not used on AWS; kept so the local values never leak through ---------------
PLATFORM_STATE_DIR = str(_PROJECT / "results" / "aws")
PLATFORM_UP_OPTIONS = []
PLATFORM_START_TIMEOUT = "60 s"
PLATFORM_STOP_TIMEOUT = "30 s"

# --- Where the platform is (placeholders until the AWS issue fills them in) -------------------------------
PLATFORM_API_URL = os.environ.get("PLATFORM_API_URL", "")
AWS_REGION = os.environ.get("AWS_REGION", "us-east-1")
SESSIONS_TABLE = os.environ.get("SESSIONS_TABLE", "")
ECS_CLUSTER = os.environ.get("ECS_CLUSTER", "")
ECS_SERVICE = os.environ.get("ECS_SERVICE", "")
# Empty: boto3's default endpoint and credential chain. Never put credentials in this file.
DYNAMODB_ENDPOINT_URL = ""
# No fault proxy in front of the AWS platform; fault keywords fail clearly there.
FAULT_PROXY_URL = ""

# --- Waiting ------------------------------------------------------------------------------------------------
HTTP_TIMEOUT = "30 s"
POLL_INTERVAL = "1 s"
SESSION_START_TIMEOUT = "3 min"
SESSION_STOP_TIMEOUT = "3 min"
# A session left on its way (STARTING, RESTARTING...) after a fault must be RUNNING, FAILED or gone by then.
SESSION_SETTLE_TIMEOUT = "10 min"
# API and DynamoDB are read a moment apart; they may straddle a transition for this long.
VIEWS_SETTLE_TIMEOUT = "30 s"
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
SLA_RECOVERY_MAX = "2 min"
# The suite's recovery time and the platform's own record (lastRecoveryMs) must agree this closely.
RECOVERY_TIME_TOLERANCE = "15 s"
SLA_COLD_START_P99 = "60 s"
SLA_WARM_START_P95 = "5 s"
SLA_CREATE_MEAN = "2 s"
SLA_FILE_OPS_P95 = "1 s"
SLA_API_P95 = "500 ms"

# --- Results ------------------------------------------------------------------------------------------------
METRICS_DIR = str(_PROJECT / "results" / "metrics")
