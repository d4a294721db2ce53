#!/usr/bin/env bash
# Benchmark of the async engine's worker pool (plugin/engine/pool.c) against
# the local endpoint, all figures from one run:
#   1. throughput of the optimised pool with the endpoint at capacity
#      C = 64 concurrent invocations and latency L = 200 ms, against the
#      ideal C / L = 320 jobs/s (target >= 90%), and against simple mode
#      (each worker submits then waits) with the same number of workers;
#   2. client CPU time per job (upload + invoke + polls + download + cleanup;
#      the payload is encoded once, before the clock starts), target <= 0.5 ms;
#   3. mean polls per job against the minimum the backoff schedule allows;
#   4. peak RSS of the client for 10,000 and 100,000 jobs with the same
#      max_concurrent_jobs (zero-latency model to keep it short), target < 10% apart.
#
#   bench/engine_pool.sh [BUILD_DIR] [OPTIMISED_JOBS] [SIMPLE_JOBS] [RSS_SMALL] [RSS_LARGE]
#
# With ASD_BENCH_BASELINE=OTHER_BUILD_DIR (a build of an earlier commit), the
# optimised run is repeated with that build's library against the same
# server, right after the first one, so a change's effect on throughput and
# CPU per job is measured side by side.
#
# Needs a built libasyncdetect and asyncdetect_endpoint, cc, GDAL and json-c
# development files.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${1:-build}"
OPT_JOBS="${2:-4000}"
SIMPLE_JOBS="${3:-300}"
RSS_SMALL="${4:-10000}"
RSS_LARGE="${5:-100000}"
BIN="$BUILD/asyncdetect_endpoint"
[ -x "$BIN" ] || { echo "engine_pool: $BIN not built (scripts/setup.sh $BUILD)" >&2; exit 1; }
LIB=$(ls "$BUILD"/libasyncdetect.so 2>/dev/null || true)
[ -n "$LIB" ] || { echo "engine_pool: $BUILD/libasyncdetect.so not built" >&2; exit 1; }

. bench/lib.sh
bench_init

cc -O2 -o "$WORK/bench" bench/engine_pool_bench.c -Iplugin/include \
  $(pkg-config --cflags gdal json-c) -L"$BUILD" -lasyncdetect -Wl,-rpath,"$(cd "$BUILD" && pwd)" \
  $(pkg-config --libs gdal json-c) -lpthread

BASE="${ASD_BENCH_BASELINE:-}"
if [ -n "$BASE" ]; then
  [ -f "$BASE/libasyncdetect.so" ] || { echo "engine_pool: $BASE/libasyncdetect.so not built" >&2; exit 1; }
  cc -O2 -o "$WORK/bench_base" bench/engine_pool_bench.c -Iplugin/include \
    $(pkg-config --cflags gdal json-c) -L"$BASE" -lasyncdetect -Wl,-rpath,"$(cd "$BASE" && pwd)" \
    $(pkg-config --libs gdal json-c) -lpthread
fi

start_server() { bench_start_endpoint "$BIN" -threads 8 -data-dir "$WORK/data" -bucket asd-bench -endpoint "$1"; }
stop_server() { bench_stop_endpoint; }

echo "machine: $(nproc) cores, shared; load before: $(uptime | sed 's/.*load average: //')"
SPEC="bench,model=centerpoint,instances=1,concurrency=64,latency_ms=200"
POOL="-sub 4 -poll 2 -max-concurrent 96 -interval 0.3 -max-interval 0.5 -multiplier 1.5 -latency 0.2"
start_server "$SPEC"
echo "server: $BIN -threads 8 -endpoint \"$SPEC\""
echo "optimised: engine_pool_bench -jobs $OPT_JOBS $POOL"
"$WORK/bench" -jobs "$OPT_JOBS" $POOL | tee "$WORK/opt.json"
if [ -n "$BASE" ]; then
  echo "baseline:  engine_pool_bench (library of $BASE) -jobs $OPT_JOBS $POOL"
  "$WORK/bench_base" -jobs "$OPT_JOBS" $POOL | tee "$WORK/base.json"
fi
echo "simple:    engine_pool_bench -jobs $SIMPLE_JOBS -simple $POOL"
"$WORK/bench" -jobs "$SIMPLE_JOBS" -simple $POOL | tee "$WORK/simple.json"
stop_server

SPEC0="bench,model=centerpoint,instances=1,concurrency=64,latency_ms=0"
POOL0="-sub 4 -poll 2 -max-concurrent 96 -interval 0.02 -max-interval 0.1 -multiplier 1.5 -latency 0"
start_server "$SPEC0"
echo "server: $BIN -threads 8 -endpoint \"$SPEC0\""
echo "rss small: engine_pool_bench -jobs $RSS_SMALL $POOL0"
"$WORK/bench" -jobs "$RSS_SMALL" $POOL0 | tee "$WORK/small.json"
echo "rss large: engine_pool_bench -jobs $RSS_LARGE $POOL0"
"$WORK/bench" -jobs "$RSS_LARGE" $POOL0 | tee "$WORK/large.json"
stop_server
echo "load after: $(uptime | sed 's/.*load average: //')"

python3 - "$WORK" <<'PY'
import json, sys
w = sys.argv[1]
o, s, a, b = (json.load(open(f"{w}/{n}.json")) for n in ("opt", "simple", "small", "large"))
ideal = 64 / 0.2
print(f"optimised throughput: {o['jobs_per_s']:.1f} jobs/s = {100*o['jobs_per_s']/ideal:.1f}% of ideal C/L = {ideal:.0f}/s (target >= 90%)")
print(f"simple mode, same {s['workers']} workers: {s['jobs_per_s']:.1f} jobs/s; optimised / simple = {o['jobs_per_s']/s['jobs_per_s']:.1f}x")
print(f"client CPU per job: optimised {o['cpu_ms_per_job']:.3f} ms, simple {s['cpu_ms_per_job']:.3f} ms, zero-latency {b['cpu_ms_per_job']:.3f} ms (target <= 0.5 ms)")
print(f"polls per job: mean {o['polls_per_job_mean']:.2f} (p95 {o['polls_per_job_p95']:.0f}), schedule minimum at L=200 ms: {o['min_polls_at_latency']}")
d = 100 * (b['peak_rss_kb'] - a['peak_rss_kb']) / a['peak_rss_kb']
print(f"HTTP requests per job: optimised {o['http_requests_per_job']:.2f}, simple {s['http_requests_per_job']:.2f}; connections opened: {o['connections']}")
try:
    base = json.load(open(f"{w}/base.json"))
    print(f"baseline build, same run: {base['jobs_per_s']:.1f} jobs/s, client CPU per job {base['cpu_ms_per_job']:.3f} ms "
          f"(this build {o['cpu_ms_per_job']:.3f} ms, {100*(o['cpu_ms_per_job']/base['cpu_ms_per_job']-1):+.0f}%)")
except FileNotFoundError:
    pass
print(f"peak RSS: {a['jobs']} jobs {a['peak_rss_kb']/1024:.1f} MiB, {b['jobs']} jobs {b['peak_rss_kb']/1024:.1f} MiB, difference {d:+.1f}% (target < 10%)")
PY
