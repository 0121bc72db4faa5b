#!/usr/bin/env bash
# The single entry point of the acceptance suite.
#
#   ./run.sh suite [--profile local|aws|aws-emulated|aws-minimal] [SUITE ...] [-- ROBOT OPTIONS]
#                                          run every suite (or the given files/folders) with pabot on the profile;
#                                          options after -- go to robot (e.g. -- --test "Name" --loglevel DEBUG)
#   ./run.sh test                          lint, format check, unit tests, libdoc, dry run, then the suites
#
# Both create .venv when it is missing and install requirements.txt into it; the install is skipped while
# requirements.txt is unchanged (a stamp file in .venv holds its hash). Results go to results/ (results/<profile>/
# for a profile other than local).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
RESULTS="$ROOT/results"
ROBOT_OPTIONS=()  # robot options given after -- (./run.sh suite ... -- --test "Name")

usage() {
    sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
}

log() {
    printf '\n==> %s\n' "$*"
}

setup_venv() {
    if [[ ! -x "$VENV/bin/python" ]]; then
        local python
        python="$(command -v python3.11 || command -v python3 || true)"
        if [[ -z "$python" ]]; then
            echo "run.sh: Python 3.11 or newer is needed (python3.11 or python3 on PATH)" >&2
            exit 2
        fi
        if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
            echo "run.sh: $python is $("$python" --version 2>&1); Python 3.11 or newer is needed" >&2
            exit 2
        fi
        log "Creating .venv with $python"
        "$python" -m venv "$VENV"
    fi
    local wanted stamp="$VENV/.requirements.sha256"
    wanted="$(sha256sum requirements.txt | cut -d' ' -f1)"
    if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$wanted" ]]; then
        log "Installing requirements.txt into .venv"
        "$VENV/bin/python" -m pip install --disable-pip-version-check --quiet -r requirements.txt
        echo "$wanted" >"$stamp"
    fi
    export PATH="$VENV/bin:$PATH"
    # One id for the whole run, shared by every pabot worker: it goes into generated user ids and metrics.
    PLATFORM_SUITE_RUN_ID="${PLATFORM_SUITE_RUN_ID:-$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')}"
    export PLATFORM_SUITE_RUN_ID
}

run_suites() {
    local profile="$1"
    shift
    local variables="resources/profiles/${profile//-/_}.py"
    if [[ ! -f "$variables" ]]; then
        echo "run.sh: unknown profile '$profile' (no $variables)" >&2
        exit 2
    fi
    # The local profile writes to results/; any other to results/<profile>/, so runs of both sit side by side.
    local out="$RESULTS"
    [[ "$profile" == "local" ]] || out="$RESULTS/$profile"
    local suites=("$@")
    local ordering=(--ordering suites/pabot-ordering.txt)
    if [[ ${#suites[@]} -eq 0 ]]; then
        suites=(suites)
    else
        ordering=()  # a chosen subset runs in pabot's own order
    fi
    local status=0
    if [[ "$profile" == "aws-emulated" ]]; then
        start_emulated_deployment || return 1
    elif [[ "$profile" == "aws-minimal" ]]; then
        start_minimal_deployment || return 1
    fi
    log "Running ${suites[*]} on profile '$profile' with pabot (run id $PLATFORM_SUITE_RUN_ID)"
    rm -rf "$out/metrics" "$out/pabot_results"
    mkdir -p "$out"
    # pabot shows a worker's console only when its suite ends; the library writes live progress (each test as it
    # starts and ends, load runs, long waits) to this file instead, and the console follows it while pabot runs.
    export PLATFORM_PROGRESS_FILE="$out/progress.log"
    : >"$PLATFORM_PROGRESS_FILE"
    tail -n +1 -F "$PLATFORM_PROGRESS_FILE" 2>/dev/null &
    local follower=$!
    # Two phases (suites/pabot-ordering.txt): first every suite without a measurement, four processes on two cores
    # (they mostly wait for recovery and timeouts, so four overlap well), longest first; then, after #WAIT, the
    # suites with tests tagged measurement one after another, so nothing CPU-heavy runs beside a measurement.
    pabot --processes "${PABOT_PROCESSES:-4}" "${ordering[@]}" \
        --pythonpath libraries --variablefile "$variables" \
        --metadata "Resilience report:[resilience-report.html|resilience-report.html]" \
        --tagstatexclude 'catches-*' --tagstatexclude 'needs-*' \
        --outputdir "$out" --xunit xunit.xml ${ROBOT_OPTIONS[@]+"${ROBOT_OPTIONS[@]}"} "${suites[@]}" || status=$?
    kill "$follower" 2>/dev/null || true
    wait "$follower" 2>/dev/null || true
    unset PLATFORM_PROGRESS_FILE
    if [[ "$profile" == "aws-emulated" ]]; then
        stop_emulated_deployment
    elif [[ "$profile" == "aws-minimal" ]]; then
        stop_minimal_deployment
    fi
    # The report is built after every run, also when tests failed; the run's exit code is pabot's, or 3 when the
    # tests passed but the report could not be built (a report that is missing is a broken run, not a green one).
    if ! build_report "$variables" "$out"; then
        echo "run.sh: the resilience report could not be built" >&2
        [[ "$status" -eq 0 ]] && status=3
    fi
    # What failed and why, last on the console, with the link into log.html.
    if [[ -f "$out/output.xml" ]]; then
        log "Summary of the run on profile '$profile'"
        PYTHONPATH="$ROOT/libraries${PYTHONPATH:+:$PYTHONPATH}" python -m resilience_report.failures \
            "$out/output.xml" || true
    fi
    return "$status"
}

EMULATED_STATE="$RESULTS/aws-emulated-platform"

start_emulated_deployment() {
    # The aws-emulated profile's deployment: the embedded platform with its AWS face (ECS and FIS APIs over its
    # processes, moto for DynamoDB and CloudWatch). Started clean for every run, stopped when the run ends or dies.
    log "Starting the emulated AWS deployment (python -m testbed up --aws-face, state $EMULATED_STATE)"
    python -m testbed down --state "$EMULATED_STATE" >/dev/null 2>&1 || true
    trap stop_emulated_deployment EXIT
    # TESTBED_DEFECTS (the efficacy runner's switch) applies here as on the local profile.
    if ! python -m testbed up --aws-face --state "$EMULATED_STATE" >/dev/null; then
        echo "run.sh: the emulated AWS deployment did not start; see $EMULATED_STATE/platform.log" >&2
        return 1
    fi
}

stop_emulated_deployment() {
    python -m testbed down --state "$EMULATED_STATE" >/dev/null 2>&1 || true
    trap - EXIT
}

MINIMAL_STATE="$RESULTS/aws-minimal-deployment"

start_minimal_deployment() {
    # The aws-minimal profile's deployment: a session service written from docs/deployment-contract.md alone, on
    # moto (DynamoDB, ECS RunTask). Started clean for every run, stopped (by its PID) when the run ends or dies.
    log "Starting the minimal deployment (python -m minimal_deployment up, state $MINIMAL_STATE)"
    python -m minimal_deployment down --state "$MINIMAL_STATE" >/dev/null 2>&1 || true
    trap stop_minimal_deployment EXIT
    if ! python -m minimal_deployment up --state "$MINIMAL_STATE" >/dev/null; then
        echo "run.sh: the minimal deployment did not start; see $MINIMAL_STATE/service.log" >&2
        return 1
    fi
}

stop_minimal_deployment() {
    python -m minimal_deployment down --state "$MINIMAL_STATE" >/dev/null 2>&1 || true
    trap - EXIT
}

build_report() {
    log "Building the resilience report (${2:-$RESULTS}/resilience-report.html and .json)"
    PYTHONPATH="$ROOT/libraries${PYTHONPATH:+:$PYTHONPATH}" python -m resilience_report "${2:-$RESULTS}" --profile "$1"
}

ensure_chromium() {
    # The report rendering test opens the resilience report in headless Chromium (Debian's package).
    command -v chromium >/dev/null 2>&1 && return 0
    if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        log "chromium is missing: apt-get update && apt-get install -y chromium (for the report rendering test)"
        if apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; then
            return 0
        fi
    fi
    echo "run.sh: chromium is missing and could not be installed; the report rendering test will be skipped" >&2
    return 0
}

libdoc_resources() {
    # The plain-language steps, browsable like the library: results/docs/<resource>.html.
    local resource
    for resource in resources/*.resource; do
        python -m robot.libdoc --pythonpath libraries "$resource" \
            "$RESULTS/docs/$(basename "$resource" .resource).html" || return 1
    done
}

cmd_suite() {
    local profile="local" suites=()
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --profile) profile="${2:?--profile needs a name: local, aws, aws-emulated or aws-minimal}"; shift 2 ;;
            --profile=*) profile="${1#--profile=}"; shift ;;
            --) shift; ROBOT_OPTIONS=("$@"); break ;;
            -*) usage ;;
            *)
                [[ -e "$1" ]] || { echo "run.sh: no suite file or folder '$1'" >&2; exit 2; }
                suites+=("$1"); shift ;;
        esac
    done
    setup_venv
    run_suites "$profile" "${suites[@]}"
}

cmd_test() {
    [[ $# -eq 0 ]] || usage
    setup_venv
    local failed=() passed=0
    step() {
        local name="$1"
        shift
        log "$name"
        if "$@"; then
            passed=$((passed + 1))
        else
            failed+=("$name")
        fi
    }
    step "ruff check" ruff check .
    step "ruff format --check" ruff format --check .
    step "robocop check" robocop check
    step "robocop format --check" robocop format --check
    ensure_chromium
    # Three workers, a file each at a time: most tests wait on platforms they start, so 2 cores carry three (about
    # 9 minutes instead of 14 on a 2-core machine); a file's tests stay together and in order.
    step "pytest" python -m pytest -n 3 --dist loadfile
    step "libdoc PlatformLibrary" python -m robot.libdoc --pythonpath libraries PlatformLibrary \
        "$RESULTS/docs/PlatformLibrary.html"
    step "libdoc of the resource files" libdoc_resources
    step "robot --dryrun" robot --dryrun --pythonpath libraries --variablefile resources/profiles/local.py \
        --outputdir "$RESULTS/dryrun" --log NONE --report NONE suites
    step "suites (pabot, local profile)" run_suites local
    step "recovery and chaos suites (pabot, aws-emulated profile)" run_suites aws-emulated suites/recovery suites/chaos
    step "recovery suites (pabot, aws-minimal profile)" run_suites aws-minimal suites/recovery
    step "efficacy matrix (fast subset)" python -m efficacy matrix --fast
    log "Summary"
    if [[ ${#failed[@]} -gt 0 ]]; then
        printf 'failed: %s\n' "${failed[@]}"
    fi
    echo "Steps: $passed passed, ${#failed[@]} failed"
    [[ ${#failed[@]} -eq 0 ]]
}

case "${1:-}" in
    suite) shift; cmd_suite "$@" ;;
    test) shift; cmd_test "$@" ;;
    *) usage ;;
esac
