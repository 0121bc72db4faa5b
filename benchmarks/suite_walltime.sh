#!/usr/bin/env bash
# Wall time of the whole suites/ folder: serial robot versus pabot (one run each, ~8 minutes).
#
#   benchmarks/suite_walltime.sh            # pabot --processes 4 with the ordering file, as run.sh runs it
#   PROCESSES=2 benchmarks/suite_walltime.sh
#
# Both runs use the local profile, an embedded platform of their own (TESTBED_STATE under results/bench/walltime,
# never the platform of a run beside them) and their own metrics folder. Prints both wall times, both results and
# the ratio serial / pabot. Goal: pabot run <= 5 minutes on 2 cores. Since the measuring suites run serially in
# a quiet phase after the parallel one (README, "Measurements"), the ratio is lower than a fully parallel run's.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT="$ROOT/results/bench/walltime"
rm -rf "$OUT"
mkdir -p "$OUT"
export TESTBED_STATE="$OUT/state"
export PATH="$ROOT/.venv/bin:$PATH"
common=(--pythonpath libraries --variablefile resources/profiles/local.py --variable "METRICS_DIR:$OUT/metrics"
    --log NONE --report NONE)

timed() {  # timed NAME COMMAND...: runs it, prints its wall seconds
    local name="$1" started ended rc
    shift
    started=$(date +%s.%N)
    "$@" >"$OUT/$name.log" 2>&1
    rc=$?
    ended=$(date +%s.%N)
    printf '%s %s %s\n' "$name" "$(python3 -c "print($ended - $started)")" "$rc"
}

export PLATFORM_SUITE_RUN_ID="wts$(od -An -N2 -tx1 /dev/urandom | tr -d ' \n')"
serial=$(timed serial robot "${common[@]}" --outputdir "$OUT/serial" --console dotted suites)
export PLATFORM_SUITE_RUN_ID="wtp$(od -An -N2 -tx1 /dev/urandom | tr -d ' \n')"
parallel=$(timed pabot pabot --processes "${PROCESSES:-4}" --ordering suites/pabot-ordering.txt --pabotlibport 0 "${common[@]}" --outputdir "$OUT/pabot" suites)

read -r _ serial_s serial_rc <<<"$serial"
read -r _ pabot_s pabot_rc <<<"$parallel"
summary() { grep -E '^[0-9]+ tests?, ' "$OUT/$1.log" | tail -1; }
printf 'serial robot        %7.1f s  exit %s  %s\n' "$serial_s" "$serial_rc" "$(summary serial)"
printf 'pabot --processes %s %7.1f s  exit %s  %s\n' "${PROCESSES:-4}" "$pabot_s" "$pabot_rc" "$(summary pabot)"
printf 'ratio serial / pabot = %.2f; pabot wall time %.1f s (goal <= 300 s)\n' \
    "$(python3 -c "print($serial_s / $pabot_s)")" "$pabot_s"
