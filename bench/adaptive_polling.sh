#!/usr/bin/env bash
# Adaptive polling (issue 15 part 0) side by side with the fixed schedule it
# replaces, both with NO polling setting at all (the defaults a user gets):
# the local endpoint with C = 64 parallel slots and latencies L = 0.2 s, 1 s,
# 10 s and 60 s, each with a +/-25 % uniform spread, behind the pool's
# default 100 slots (so the endpoint keeps a queue, as a real one does).
# Targets: throughput >= 90 % of C/L and <= 3 polls per job on average.
#
#   bench/adaptive_polling.sh [BUILD_DIR] [LATENCIES_S...]
#
# The fixed-schedule runs (ASYNC_SM_ADAPTIVE_POLLING=false: a first poll
# 30 s after each invocation) are given fewer jobs so that they stay within a
# few minutes; throughput is jobs / wall time of each run either way, ramp-up
# and drain included.  A finite run cannot reach C/L even with every result
# seen the instant it appears: the last wave's spread drains with nothing
# behind it (about 83 % of C/L for 3 waves at +/-25 %, 93 % for 10; the model
# in autotest/unit/test_engine_latency.cpp).  So the adaptive runs get 40, 20,
# 16 and 10 waves of C jobs; ADAPTIVE_JOBS="0.2:2560 60:192 ..." overrides them.
# The 1-minute load average is printed before every run (machine is shared).
# TRACE_DIR=DIR keeps a timeline of each adaptive run (DIR/a_L.trace: one line
# per job as it ends: seconds since the start, tile, seconds, polls).
# Needs a built libasyncdetect and asyncdetect_endpoint, cc, GDAL and json-c.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${1:-build}"
shift || true
LATENCIES=("$@")
[ ${#LATENCIES[@]} -gt 0 ] || LATENCIES=(0.2 1 10 60)
BIN="$BUILD/asyncdetect_endpoint"
[ -x "$BIN" ] || { echo "adaptive_polling: $BIN not built (scripts/setup.sh $BUILD)" >&2; exit 1; }
[ -f "$BUILD/libasyncdetect.so" ] || { echo "adaptive_polling: $BUILD/libasyncdetect.so not built" >&2; exit 1; }

. bench/lib.sh
bench_init

cc -O2 -o "$WORK/bench" bench/adaptive_polling_bench.c -Iplugin/include \
  $(pkg-config --cflags gdal) -L"$BUILD" -lasyncdetect -Wl,-rpath,"$(cd "$BUILD" && pwd)" \
  $(pkg-config --libs gdal) -lpthread

start_server() { bench_start_endpoint "$BIN" -threads 8 -data-dir "$WORK/data" -bucket asd-bench -endpoint "$1"; }
stop_server() { bench_stop_endpoint; }

# No polling setting may leak in from the caller's environment.
unset ASYNC_SM_POLLING_INTERVAL ASYNC_SM_MAX_POLLING_INTERVAL ASYNC_SM_BACKOFF_MULTIPLIER \
  ASYNC_SM_POLLING_JITTER ASYNC_SM_ADAPTIVE_POLLING ASYNC_SM_MAX_CONCURRENT_JOBS
C=64
echo "machine: $(nproc) cores, shared; load before: $(uptime | sed 's/.*load average: //')"
for L in "${LATENCIES[@]}"; do
  ms=$(python3 -c "print(int(float('$L')*1000))")
  spread=$((ms / 4))
  # Adaptive: enough waves of C jobs to see the steady state; fixed: a bounded run.
  case "$L" in
    0.2) NA=2560; NF=300 ;;
    1) NA=1280; NF=300 ;;
    10) NA=1024; NF=300 ;;
    *) NA=640; NF=192 ;;
  esac
  for o in ${ADAPTIVE_JOBS:-}; do [ "${o%%:*}" = "$L" ] && NA=${o#*:}; done
  SPEC="bench,model=centerpoint,instances=1,concurrency=$C,latency_ms=$ms,spread_ms=$spread"
  start_server "$SPEC"
  echo "server: $BIN -threads 8 -endpoint \"$SPEC\""
  echo "adaptive (defaults): adaptive_polling_bench -jobs $NA; load $(bench_load)"
  bench_load >"$WORK/a_$L.load"
  ADAPTIVE_POLLING_TRACE="${TRACE_DIR:+$TRACE_DIR/a_$L.trace}" "$WORK/bench" -jobs "$NA" | tee "$WORK/a_$L.json"
  stop_server
  start_server "$SPEC"
  echo "fixed (defaults, ASYNC_SM_ADAPTIVE_POLLING=false): adaptive_polling_bench -jobs $NF; load $(bench_load)"
  bench_load >"$WORK/f_$L.load"
  ASYNC_SM_ADAPTIVE_POLLING=false "$WORK/bench" -jobs "$NF" | tee "$WORK/f_$L.json"
  stop_server
  if [ "$ms" -le 1000 ]; then
    # The machine's ceiling: a fixed schedule hand-tuned to this latency
    # (polls every L/4 to L/2), which a user would have to know to choose.
    start_server "$SPEC"
    iv=$(python3 -c "print(float('$L')/4)"); mx=$(python3 -c "print(float('$L')/2)")
    echo "hand-tuned fixed: ASYNC_SM_POLLING_INTERVAL=$iv ASYNC_SM_MAX_POLLING_INTERVAL=$mx adaptive_polling_bench -jobs $NA; load $(bench_load)"
    bench_load >"$WORK/t_$L.load"
    ASYNC_SM_POLLING_INTERVAL=$iv ASYNC_SM_MAX_POLLING_INTERVAL=$mx "$WORK/bench" -jobs "$NA" | tee "$WORK/t_$L.json"
    stop_server
  fi
done
echo "load after: $(uptime | sed 's/.*load average: //')"

python3 - "$WORK" "$C" "${LATENCIES[@]}" <<'PY'
import json, sys
w, C, lats = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
print("| L (spread ±25 %) | C/L jobs/s | adaptive jobs/s (% of C/L) [load] | adaptive polls/job (p95) | adaptive client CPU ms/job | fixed 30 s jobs/s (% of C/L) [load] | fixed polls/job | hand-tuned fixed jobs/s (% of C/L), polls/job [load] |")
print("|---|---|---|---|---|---|---|---|")
def load(p):
    try:
        return open(f"{w}/{p}.load").read().strip()
    except FileNotFoundError:
        return "?"
def tuned(L, ideal):
    try:
        t = json.load(open(f"{w}/t_{L}.json"))
    except FileNotFoundError:
        return "not run"
    return f"{t['jobs_per_s']:.2f} ({100*t['jobs_per_s']/ideal:.1f} %), {t['polls_per_job_mean']:.2f} [{load('t_'+L)}]"
for L in lats:
    a = json.load(open(f"{w}/a_{L}.json")); f = json.load(open(f"{w}/f_{L}.json"))
    ideal = C / float(L)
    print(f"| {L} s | {ideal:.2f} | {a['jobs_per_s']:.2f} ({100*a['jobs_per_s']/ideal:.1f} %, {a['jobs']} jobs) [{load('a_'+L)}] | "
          f"{a['polls_per_job_mean']:.2f} ({a['polls_per_job_p95']:.0f}) | {a['cpu_ms_per_job']:.2f} | "
          f"{f['jobs_per_s']:.2f} ({100*f['jobs_per_s']/ideal:.1f} %, {f['jobs']} jobs) [{load('f_'+L)}] | "
          f"{f['polls_per_job_mean']:.2f} | {tuned(L, ideal)} |")
PY
