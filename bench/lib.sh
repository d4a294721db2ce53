# shellcheck shell=bash
# bench/lib.sh: what the benchmark scripts share, sourced after they `cd` to
# the repository root (`. bench/lib.sh`):
#
#   bench_init                 a work directory ($WORK) removed on exit, with
#                              the endpoint (if any) stopped first; a script
#                              that must undo more (a tc qdisc) defines
#                              bench_on_exit, which runs before that
#   bench_start_endpoint BIN [ARGS...]
#                              starts the local endpoint BIN with ARGS (its
#                              stdout/stderr in $WORK/server.out/.err), waits
#                              for the URL it prints on its first line, sets
#                              URL, PORT and SERVER_PID, and points the AWS
#                              SDK variables at it with the endpoint's
#                              published local keys (no profile, no token)
#   bench_stop_endpoint        stops it and removes $WORK/data
#   bench_make_tls_ca DIR      a throw-away CA (DIR/ca.pem) and a server
#                              certificate for 127.0.0.1 signed by it
#                              (DIR/srv.pem, DIR/srv.key), for the HTTPS runs
#   bench_load                 the 1-minute load average (the machine is
#                              shared: every figure is printed next to it)
#
# One endpoint at a time; the ARGS are each script's own (data directory,
# bucket, endpoint spec), so that a run can be repeated by hand from what the
# script prints.

WORK=""
SERVER_PID=""
URL=""
PORT=""

bench_cleanup() {
  if declare -F bench_on_exit >/dev/null; then bench_on_exit || true; fi
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
  if [ -n "$WORK" ]; then rm -rf "$WORK"; fi
}

bench_init() {
  WORK=$(mktemp -d)
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
}

bench_start_endpoint() {  # BIN [ARGS...]
  local bin="$1"
  shift
  # A previous endpoint's URL must not be read as this one's: the new
  # process truncates the file only once it runs, after this shell reads it.
  rm -f "$WORK/server.out" "$WORK/server.err"
  "$bin" "$@" >"$WORK/server.out" 2>"$WORK/server.err" &
  SERVER_PID=$!
  URL=""
  for _ in $(seq 200); do
    URL=$(head -1 "$WORK/server.out" 2>/dev/null || true)
    [ -n "$URL" ] && break
    sleep 0.05
  done
  [ -n "$URL" ] || { echo "the local endpoint did not start: $(cat "$WORK/server.err")" >&2; exit 1; }
  PORT=${URL##*:}
  export AWS_ENDPOINT_URL="$URL" AWS_ACCESS_KEY_ID=ASDLOCALACCESSKEY \
    AWS_SECRET_ACCESS_KEY=asdlocal-secret-not-for-aws AWS_REGION=us-east-1
  unset AWS_PROFILE AWS_SESSION_TOKEN
}

bench_stop_endpoint() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
  rm -rf "$WORK/data"
}

bench_load() { cut -d' ' -f1 /proc/loadavg; }

bench_make_tls_ca() {
  local d="$1"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/ca.key" -out "$d/ca.pem" \
    -days 1 -subj "/CN=bench CA" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/srv.key" -out "$d/srv.csr" \
    -subj "/CN=127.0.0.1" 2>/dev/null
  printf "subjectAltName=IP:127.0.0.1\n" >"$d/ext"
  openssl x509 -req -in "$d/srv.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
    -out "$d/srv.pem" -days 1 -extfile "$d/ext" 2>/dev/null
}
