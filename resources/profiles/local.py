"""Profile ``local`` (the default): the embedded platform on this machine, with tight SLAs.

A Robot Framework variable file. Every timeout and SLA number the suites use lives here (or in ``aws.py``,
which must define the same names so that switching profiles replaces every value). Times are Robot
Framework times: ``10 s``, ``500 ms``, ``2 min``.
"""

import os
from pathlib import Path

_PROJECT = Path(__file__).resolve().parents[2]

PROFILE = "local"
TARGET = "embedded"

# --- The embedded platform (python -m testbed) -------------------------------------------------------------
# Where `python -m testbed up` keeps endpoints.json, logs and the EFS folder; env TESTBED_STATE overrides.
PLATFORM_STATE_DIR = os.environ.get("TESTBED_STATE") or str(_PROJECT / "results" / "testbed")
# Extra arguments for `python -m testbed up`, e.g. ["--defect", "no-restart"] or ["--set", "app_init_delay=1"].
PLATFORM_UP_OPTIONS = os.environ.get("PLATFORM_UP_OPTIONS", "").split()
PLATFORM_START_TIMEOUT = "60 s"
PLATFORM_STOP_TIMEOUT = "30 s"

# --- Waiting: deadlines for conditions, never fixed sleeps ------------------------------------------------
HTTP_TIMEOUT = "5 s"
POLL_INTERVAL = "50 ms"
SESSION_START_TIMEOUT = "15 s"
SESSION_STOP_TIMEOUT = "15 s"
# A session left on its way (STARTING, RESTARTING...) after a fault must be RUNNING, FAILED or gone by then.
SESSION_SETTLE_TIMEOUT = "20 s"
# API and DynamoDB are read a moment apart; they may straddle a transition for this long.
VIEWS_SETTLE_TIMEOUT = "2 s"
# How long a test gives the platform to react to an injected fault before it looks at the outcome.
FAULT_REACTION_TIMEOUT = "10 s"
CONTAINER_APPEAR_TIMEOUT = "10 s"
# How long a recovery is watched; longer than SLA_RECOVERY_MAX so an overshoot is measured, not cut off.
RECOVERY_TIMEOUT = "30 s"
# Containers of a deleted session may take a moment to stop; past this they are orphans.
ORPHAN_GRACE_TIMEOUT = "10 s"
# How long a test waits for its turn when another test has the platform to itself.
PLATFORM_LOCK_TIMEOUT = "10 min"

# --- Load ---------------------------------------------------------------------------------------------------
CONCURRENT_SESSIONS = 20
# A request of a concurrent burst without an answer after this long counts as a hang.
CONCURRENT_REQUEST_TIMEOUT = "20 s"

# --- SLAs: the numbers the assertions compare against -----------------------------------------------------
SLA_RECOVERY_MAX = "10 s"
# The suite's recovery time and the platform's own record (lastRecoveryMs) must agree this closely.
RECOVERY_TIME_TOLERANCE = "500 ms"
SLA_COLD_START_P99 = "1.5 s"
SLA_WARM_START_P95 = "300 ms"
SLA_CREATE_MEAN = "100 ms"
SLA_FILE_OPS_P95 = "50 ms"
SLA_API_P95 = "50 ms"

# --- Results ------------------------------------------------------------------------------------------------
METRICS_DIR = str(_PROJECT / "results" / "metrics")
