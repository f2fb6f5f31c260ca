#!/usr/bin/env bash
# benches/inside.sh — one harness run of one proxy, looked at from inside:
# where its CPU goes (user / system per request) and, with perf and nstat
# available, how many io_uring operations and TCP segments a request costs.
#
#   benches/inside.sh fastlb small:64 [CMD]   # CMD: the proxy command, as PROXY_CMD of the harness;
#                                             # default for "fastlb": target/release/fastlb as compare.sh runs it
#   benches/inside.sh nginx small:256         # a peer of the harness (nginx, haproxy)
#   PERF=0 benches/inside.sh floor small:64 "$(pwd)/target/release/examples/relay_floor \$LISTEN \$BACKENDS"
#
# It runs `peers.sh` for DURATION seconds (12) and samples the middle 4 s:
# - user and system CPU of the proxy and its child processes from
#   /proc/<pid>/stat, per request (at the run's requests/s);
# - with PERF=1 (default, needs `perf`): io_uring submissions, poll arms and
#   io_uring_enter calls per request (tracepoints, on the proxy's pid);
# - TCP segments per request over the whole machine (`nstat`, both legs).
# Single runs move by a few percent: compare interleaved runs, as
# BENCHMARKS.md does.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR=${BENCH_DIR:-$ROOT/../shared/bench}
name=${1:?usage: benches/inside.sh NAME SCENARIO [CMD]}
scen=${2:?usage: benches/inside.sh NAME SCENARIO [CMD]}
cmd=${3:-}
DURATION=${DURATION:-12}
PERF=${PERF:-1}
if [[ -z "$cmd" && "$name" == fastlb ]]; then
  cmd="$(printf '%q' "$ROOT/target/release/fastlb")"' --listen $LISTEN --backends $BACKENDS --workers $WORKERS --no-forward-headers'
fi

log=$(mktemp /tmp/inside-XXXXXX.log)
common=(SCENARIOS="$scen" DURATION="$DURATION" QUIET_MAX_WAIT=5 RESULTS="$log.csv")
case "$name" in
  nginx|haproxy) env "${common[@]}" "$BENCH_DIR/peers.sh" "$name" >"$log" 2>&1 & ;;
  *) [[ -n "$cmd" ]] || { echo "inside.sh: give the command of proxy $name" >&2; exit 2; }
     env "${common[@]}" PROXY_NAME="$name" PROXY_CMD="$cmd" "$BENCH_DIR/peers.sh" custom >"$log" 2>&1 & ;;
esac
run=$!

pid=""
for _ in $(seq 1 150); do
  pid=$(grep -o "up: proxy=$name pid=[0-9]*" "$log" | grep -o '[0-9]*$' || true)
  [[ -n "$pid" ]] && break
  sleep 0.2
done
[[ -n "$pid" ]] || { echo "inside.sh: the proxy did not come up, see $log" >&2; wait "$run" || true; exit 1; }
# The measured wrk starts after the harness's warm-up and quiet wait.
for _ in $(seq 1 600); do pgrep -x wrk >/dev/null && break; sleep 0.1; done
sleep $(( DURATION / 2 - 1 ))

ticks() {  # utime and stime of the proxy and its children, in clock ticks
  local u=0 s=0 p
  for p in "$pid" $(pgrep -P "$pid" || true); do
    local pu ps
    read -r pu ps < <(awk '{print $14, $15}' "/proc/$p/stat")
    u=$((u + pu)); s=$((s + ps))
  done
  echo "$u $s"
}
command -v nstat >/dev/null && nstat -n >/dev/null
read -r u1 s1 < <(ticks); t1=$(date +%s.%N)
if [[ "$PERF" == 1 ]] && command -v perf >/dev/null; then
  perf stat -x, -o "$log.perf" -e io_uring:io_uring_submit_req,io_uring:io_uring_poll_arm,syscalls:sys_enter_io_uring_enter \
    -p "$pid" -- sleep 4 >/dev/null 2>&1 || true
else
  sleep 4
fi
read -r u2 s2 < <(ticks); t2=$(date +%s.%N)
command -v nstat >/dev/null && nstat -z >"$log.nstat"
wait "$run" || true

line=$(grep '^|' "$log" | tail -1)
echo "$line"
rps=$(grep -o '[0-9.]* rps' <<<"$line" | cut -d' ' -f1)
hz=$(getconf CLK_TCK)
python3 - "$rps" "$hz" "$u1" "$s1" "$u2" "$s2" "$t1" "$t2" "$log" <<'PY'
import os, sys
rps, hz = float(sys.argv[1]), float(sys.argv[2])
u1, s1, u2, s2 = (float(x) for x in sys.argv[3:7])
secs = float(sys.argv[8]) - float(sys.argv[7])
log = sys.argv[9]
per = lambda ticks: ticks / hz / secs / rps * 1e6
print(f"  proxy CPU per request: user {per(u2 - u1):.2f} µs, system {per(s2 - s1):.2f} µs")
reqs = rps * 4
if os.path.exists(log + ".perf"):
    for line in open(log + ".perf"):
        parts = line.strip().split(",")
        if len(parts) > 2 and parts[0].replace(".", "").isdigit():
            print(f"  {parts[2]}: {float(parts[0]) / reqs:.2f} per request")
if os.path.exists(log + ".nstat"):
    for line in open(log + ".nstat"):
        p = line.split()
        if len(p) > 1 and p[0] in ("TcpOutSegs", "TcpExtTCPPureAcks", "TcpRetransSegs"):
            print(f"  {p[0]}: {int(p[1]) / (rps * (secs)):.2f} per request (whole machine)")
PY
rm -f "$log" "$log.csv" "$log.perf" "$log.nstat"
