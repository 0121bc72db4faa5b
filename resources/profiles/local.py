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
_POLL_INTERVAL_S = 0.05
POLL_INTERVAL = f"{_POLL_INTERVAL_S * 1000:g} ms"
SESSION_START_TIMEOUT = "15 s"
SESSION_STOP_TIMEOUT = "15 s"
# A session left on its way (STARTING, RESTARTING...) after a fault must be RUNNING, FAILED or gone by then.
SESSION_SETTLE_TIMEOUT = "20 s"
# API and DynamoDB are read a moment apart; they may straddle a transition for this long.
VIEWS_SETTLE_TIMEOUT = "2 s"
# A session whose start nobody carries out (its API target died after writing the record) is ended FAILED by the
# reaper once it has not moved for the platform's start_timeout (10 s), within a reaper pass (1 s) and the allowance.
STUCK_START_TIMEOUT = "10 s"
STUCK_END_ALLOWANCE = "5 s"
STUCK_STOPPED_REASON = "stuck"
# A file call shows in the session's lastActivityAt within this (the platform flushes activity every 2 s).
SESSION_ACTIVITY_TIMEOUT = "10 s"
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
# How long a target failing its health checks may stay in the load balancer's rotation (interval 0.5 s x 2 failed
# checks + 0.4 s check timeout, and a poll).
LB_DETECTION_TIMEOUT = "3 s"
# Restarts a crashing session gets before it is FAILED (the embedded platform's restart_max (in restart_window, 60 s)).
RESTART_MAX = 5
SLA_RECOVERY_MAX = "10 s"
# The suite's recovery time and the platform's own record (lastRecoveryMs) must agree: the platform's clock starts
# when it detects the crash (its monitor polls every 20 ms, and a container sent SIGTERM must exit first), the
# suite's at the kill. This allows for that detection; the suite adds the observation window it measured itself
# (from its last answer that was not RUNNING to the first that was), so slow polling never widens it blindly.
RECOVERY_TIME_TOLERANCE = "500 ms"
SLA_COLD_START_P99 = "1.5 s"
SLA_WARM_START_P95 = "300 ms"
SLA_CREATE_MEAN = "100 ms"
# Every single create, not only their mean (a few slow creates must not hide in a good mean). Not in the
# seed, which names a mean only: 2.5 times the mean bound, as on AWS; a clean create here takes 10-30 ms.
SLA_CREATE_MAX = "250 ms"
SLA_FILE_OPS_P95 = "50 ms"
SLA_API_P95 = "50 ms"
# The embedded platform's word in lastFailureReason for a container stopped by SIGKILL / SIGTERM (testbed/runtime.py
# describe_exit: "container exited on SIGKILL", "container exited with code 0" after a clean SIGTERM shutdown). The
# deployment contract promises a reason, not its words: a profile for another platform leaves these empty and the
# recovery suite then checks only that a reason is set.
SIGKILL_FAILURE_REASON = "SIGKILL"
SIGTERM_FAILURE_REASON = "exited"
# How the recovery tests that need a crash, not a signal, crash a container (the restart budget, the views after a
# crash, the fields over a restart, a file after a replacement): SIGKILL, the hardest. The tests named for a signal
# send theirs.
CRASH_SIGNAL = "SIGKILL"
# The embedded platform's stoppedReason for a session whose restart budget ran out (docs/platform-contract.md).
RESTART_BUDGET_STOPPED_REASON = "restart policy"
# The session fields whose life docs/platform-contract.md promises ("A session's fields tell its story"): each is
# judged before and after every transition the lifecycle suite drives (fixed fields stay, stamps move forward ...).
SESSION_FIELDS_PROMISED = [
    "sessionId",
    "userId",
    "clientId",
    "workspace",
    "createdAt",
    "expiresAt",
    "updatedAt",
    "lastActivityAt",
    "version",
    "status",
    "taskId",
    "startType",
    "startDurationMs",
    "restartCount",
    "lastFailureReason",
    "lastRecoveryMs",
    "stoppedReason",
]

# --- Load, stress and performance ---------------------------------------------------------------------------------
# Load runs: most requests in flight (virtual users) of the open model, when a send counts as late, how often
# a running load prints its progress on the console.
LOAD_MAX_VUS = 100
LOAD_LATE_THRESHOLD = "10 ms"
LOAD_PROGRESS_INTERVAL = "5 s"
# Normal load (API reads per second) and the stress factor on it ("stable under 3x normal load").
NORMAL_API_RATE = "50/s"
STRESS_LOAD_FACTOR = 3
STRESS_DURATION = "60 s"
# The normal mix, of which the stress test runs STRESS_LOAD_FACTOR times: API reads (NORMAL_API_RATE), file
# operations and whole session lifecycles (create, run, use, delete).
NORMAL_FILE_OPS_RATE = "20/s"
NORMAL_SESSION_RATE = "10/min"
# Sustained session creation, file operations per second, concurrent users (at least 3).
SUSTAINED_SESSION_RATE = "10/min"
SUSTAINED_DURATION = "30 s"
FILE_OPS_RATE = "100/s"
FILE_OPS_DURATION = "10 s"
CONCURRENT_USERS = 4
CONCURRENT_DURATION = "10 s"
# Each concurrent user does one file operation per pace (a closed model with wrk2-style slots).
CONCURRENT_PACE = "50 ms"
# Rapid creation: a burst within capacity that the platform must take without refusing anything.
RAPID_CREATE_RATE = "10/s"
RAPID_CREATE_DURATION = "2 s"
# Performance samples: container starts, creates, API and file-operation latency runs.
START_SAMPLES = 5
CREATE_RATE = "2/s"
CREATE_DURATION = "3 s"
LATENCY_RUN_DURATION = "5 s"
# Private platforms (embedded only, `python -m testbed up --set ...`) of the suites that fill or reconfigure a
# whole platform, so they never disturb tests running beside them.
_EXHAUSTION_CEILING = 4
EXHAUSTION_PLATFORM = [
    "min_capacity=2",
    f"max_capacity={_EXHAUSTION_CEILING}",
    "max_pending=2",
    "scale_out_step=2",
    "warm_pool_size=1",
]
EXHAUSTION_CREATE_RATE = "20/s"
EXHAUSTION_DURATION = "2 s"
# Most sessions the full platform may accept: its ceiling (max_capacity above). Sessions waiting for capacity count
# towards it: the queue (max_pending) bounds how many of them may wait, it adds no room.
EXHAUSTION_ACCEPT_MAX = _EXHAUSTION_CEILING
# Slots a full platform may leave empty when demand exceeds its ceiling (README, "Both bounds"): none on a private
# platform, where nothing else holds a slot and the queue (max_pending) reaches the ceiling in every setting above.
CAPACITY_FILL_ALLOWANCE = 0
_SCALING_MIN_CAPACITY = 2
SCALING_PLATFORM = [
    f"min_capacity={_SCALING_MIN_CAPACITY}",
    "max_capacity=6",
    "scale_out_step=2",
    "scale_out_delay=1",
    "scale_in_delay=1",  # each test starts from the minimum: an earlier test's capacity is gone a second later
    "max_pending=4",
    "warm_pool_size=0",
]
SCALING_MIN_CAPACITY = _SCALING_MIN_CAPACITY
SCALE_IN_TIMEOUT = "20 s"
SCALING_LOAD_STEP = 6
SCALING_CEILING = 6
# Creates sent past the ceiling, one after another at this rate (SCALING_CEILING + 2 of them).
SCALING_STEP_RATE = "20/s"
# EFS baseline throughput while the platform scales: one session's file operations at the normal rate run through a
# load step that needs capacity (SCALING_IO_STEP sessions beside it on SCALING_PLATFORM: 2 -> 6). All must be
# answered at the rate (the open model sends on schedule, so a throughput below it means answers came late or not
# at all; 95 % of the rate allows the last second's answers of a run that ends mid-second).
SCALING_IO_RATE = "20/s"
SCALING_IO_DURATION = "8 s"
SCALING_SETTLE_DURATION = "3 s"  # the new sessions' first file operations, sampled with the scale-out
SCALING_IO_STEP = 4
SCALING_IO_THROUGHPUT_MIN = "19/s"
SCALE_OUT_TIMEOUT = "10 s"
_IDLE_TIMEOUT, _REAPER_INTERVAL = 2.0, 0.2
IDLE_PLATFORM = [
    f"idle_timeout={_IDLE_TIMEOUT:g}",
    f"reaper_interval={_REAPER_INTERVAL:g}",
    "activity_flush_interval=0.5",
]
IDLE_SESSIONS = 3
IDLE_SHUTDOWN_WAIT = "8 s"
START_PLATFORM = ["warm_pool_size=1"]
# The reaper is held off so that only the platform's own bookkeeping can stop the containers it started.
LEAK_PLATFORM = ["reaper_interval=3600", "warm_pool_size=0", "min_capacity=16", "max_capacity=24"]
LEAK_CREATE_RATE = "10/s"
LEAK_DURATION = "3 s"
# SLAs and limits of the load tests (SLA_ times tighter than AWS's: the embedded platform runs on this machine).
# Under stress the 2-core machine also runs the other suites and their platforms: allow for contention.
# Under 3x the normal mix the API may take at most STRESS_SLA_FACTOR times its normal p95 bounds (SLA_API_P95,
# SLA_FILE_OPS_P95; tests/test_library_profile.py keeps them tied).
STRESS_SLA_FACTOR = 2
SLA_STRESS_API_P95 = "100 ms"
SLA_STRESS_MIX_FILE_OPS_P95 = "100 ms"
SLA_STRESS_FILE_OPS_P95 = "150 ms"
LOAD_ERROR_RATE_MAX = "1 %"
LOAD_DROPPED_MAX = "1 %"
SLA_SESSION_CYCLE_P95 = "3 s"
SLA_SCALE_OUT_MAX = "3 s"
# From a session's last activity until the suite sees it stopped, derived from the platform's timers: the idle
# timeout, at most one reaper interval until the pass that finds it idle, the suite's poll interval; and, since one
# pass stops the idle sessions one after another, a stop allowance per idle session (SIGTERM until the container
# exits, then one DynamoDB write: 20-60 ms on a quiet 2-core machine).
_IDLE_STOP_ALLOWANCE = 0.25
SLA_AUTO_SHUTDOWN_MAX = (
    f"{_IDLE_TIMEOUT + _REAPER_INTERVAL + _POLL_INTERVAL_S + IDLE_SESSIONS * _IDLE_STOP_ALLOWANCE:g} s"
)
CPU_UTILISATION_MAX_PERCENT = 70
MEMORY_UTILISATION_MAX_PERCENT = 80

# --- Measuring on a quiet machine (tests tagged `measurement`; README "Measurements") ---------------------------
# Before a measurement the suite times keep-alive round trips to a trivial local server (the reference); during it,
# it counts the CPU that processes other than the test's own (its robot process and the platform it measures) use,
# steal time included. Past either limit the machine is too busy to measure: the test skips with both figures.
# A quiet 2-core machine gives a reference p50 of 0.1-0.3 ms and under 0.05 cores of others' CPU.
MEASURE_REFERENCE_ROUND_TRIPS = 200
MEASURE_REFERENCE_P50_MAX = "1 ms"
MEASURE_FOREIGN_CPU_MAX = 0.3
# A latency, duration or rate bound is judged only when the run itself left CPU to spare: the load generator, the
# platform and its DynamoDB stand-in share this machine, and at 3x the normal mix they fill it (measured on a 2-core
# machine: p95 of reads 68 ms with 0.7 cores used by others; 262 ms with the run capped at 1.2 cores, throttled in
# most periods). Above this share of the cores the run can use (the machine's, or its cgroup quota's) the timing
# measures the machine, so it is skipped with the figures; errors, lost data and utilisation are judged anyway.
MEASURE_SATURATION_MAX = "85 %"

# --- Chaos: faults are refused unless allowed; each chaos suite runs its own private platform ---------------------
CHAOS_ALLOWED = True
# A client's timeout per attempt during a partition, and how fast a 503 must come while the circuit is open.
CHAOS_CLIENT_TIMEOUT = "1 s"
CHAOS_FAIL_FAST_MAX = "500 ms"
# The slowest answer a request may get while the platform's DynamoDB calls meet no answer (an outage before the
# circuit opens, lost connections). The platform's DynamoDB client bounds it: 3 attempts (store_max_attempts), each
# waiting out the 1 s read timeout (store_read_timeout), botocore's backoff between them (at most 1 s, then 2 s), a
# wait for a store slot (store_queue_timeout 0.25 s): 6.25 s, and a margin. A client without a timeout of its own
# (botocore's default read timeout is 60 s) hangs far past it.
CHAOS_STORE_ANSWER_MAX = "8 s"
# The metric the platform publishes itself through its route to CloudWatch (the cloudwatch hop): how the CloudWatch
# outage test sees the metrics flow again (the embedded platform's session service is named session-service).
PLATFORM_METRIC_NAMESPACE = "SessionPlatform"
PLATFORM_METRIC_NAME = "LiveSessions"
PLATFORM_METRIC_DIMENSIONS = "ServiceName=session-service"
# How far the clock is skewed ("minutes either way"), and how close to a TTL or idle boundary the tests go.
CHAOS_CLOCK_SKEW = "5 min"
CHAOS_TIME_MARGIN = "5 s"
# How long a fault is held and watched before it is reverted (a polled window that must hold, not a sleep).
CHAOS_OBSERVATION_WINDOW = "1 s"
# Stopwatches under a fault are bounded from both sides against a same-run reference: the same operation timed just
# before the fault in the same test (a busy machine slows both), plus what the fault adds, plus an allowance below.
# The chaos tests run in the parallel phase beside other suites, so the allowances are generous for a machine with
# about 1.2 free cores, yet far below what a frozen container or a call waiting out a timeout costs (the API's
# container_call_timeout is 3 s, the store's timeouts 1-2 s). Round trips timed per side (p95 needs at least 20).
CHAOS_ROUND_TRIPS = 20
# A CPU-busy or disk-busy container (a burner or an fsync writer in its cgroup): its file round trips' p95 may exceed
# the reference's by this. Seen on the shared machine: reference p95 10-40 ms, under stress 15-120 ms.
CHAOS_STRESSED_ROUND_TRIP_ALLOWANCE = "1 s"
# A fault that should not touch the container at all (the container control plane unavailable): its round trips'
# p95 may exceed the reference's by this, for a busy machine's noise only; an outage that stalls the container (a
# wait on ECS in the request path, a restart) costs seconds.
CHAOS_UNAFFECTED_ROUND_TRIP_ALLOWANCE = "500 ms"
# A container throttled to 0.1 CPU beside a burner: each request waits for CFS periods (100 ms) of its share.
CHAOS_THROTTLED_ROUND_TRIP_ALLOWANCE = "2 s"
# A request through a slow mesh or a create while DynamoDB is slow takes the injected delay once (one answer through
# the hop, one session write before the 201); beyond reference + delay it may take this (a second delay, a retry, a
# timeout does not fit in it: the tests inject 300-600 ms).
CHAOS_SLOW_MESH_ALLOWANCE = "500 ms"
CHAOS_SLOW_STORE_ALLOWANCE = "250 ms"

# --- Cost per session (seed: "cost per session < $0.25"; suites/performance/session_cost.robot) ----------------
# A typical session: a user keeps it this long, in one Fargate task of this size (the task definition's cpu and
# memory), priced with today's set of this dated price file. The asserted cost is the measured billed time of a
# session beyond its active use (start-up, the tail after its delete) plus this duration, priced. The embedded
# platform's containers stand in for tasks of this size: they are processes, and their cgroup limits (256 MB) are
# no Fargate size.
COST_BUDGET_PER_SESSION = 0.25
TYPICAL_SESSION_DURATION = "1 h"
TASK_VCPU = 1.0
TASK_MEMORY_GB = 2.0
PRICING_FILE = str(_PROJECT / "resources" / "pricing.json")
# The cost suite's private platform: no warm pool, so the session's task is its own, billed from its create (a
# warm-pool task is billed from its own start, however long it waited for a session).
COST_PLATFORM = ["warm_pool_size=0"]

# --- Results ------------------------------------------------------------------------------------------------
METRICS_DIR = str(_PROJECT / "results" / "metrics")
