#!/usr/bin/env bash
# benches/callgrind.sh — instructions per request of a proxy's busiest thread
# under load (callgrind), and where they go.
#
#   benches/callgrind.sh fastlb                       # target/release/fastlb, built-in round robin
#   benches/callgrind.sh floor "$(pwd)/target/release/examples/relay_floor \$LISTEN \$BACKENDS"
#   TOP=60 CONNS=16 benches/callgrind.sh NAME "CMD"   # CMD as the harness's PROXY_CMD ($LISTEN, $BACKENDS)
#
# Two nginx backends ("ok\n", as the harness's small scenario) and the proxy
# under `valgrind --tool=callgrind --separate-threads=yes`; wrk (CONNS
# keep-alive connections) warms it up for WARM seconds, the counters are
# dumped and zeroed, wrk runs MEASURE seconds more and they are dumped again.
# Under valgrind the proxy is the bottleneck, so this is the loaded regime:
# many completions per turn of the event loop, as at c=64 in the harness.
# (BENCHMARKS' single-connection method, 1,000 then 5,000 sequential GETs,
# gives the unbatched regime instead.) Prints instructions per request of
# the busiest thread in the measured window and its TOP functions by self
# cost. Instruction counts repeat within ~1% where wall-clock time moves by
# several percent; they do not see the kernel, which is ~80% of a small
# request's CPU.
#
# valgrind 3.19 keeps its global lock while a thread blocks in
# io_uring_enter, so another thread's idle ring would starve the worker:
# run fastlb without an admin socket (the default below), which leaves the
# worker the only thread with a ring.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
name=${1:?usage: benches/callgrind.sh NAME [CMD]}
cmd=${2:-}
if [[ -z "$cmd" && "$name" == fastlb ]]; then
  cmd="$(printf '%q' "$ROOT/target/release/fastlb")"' --listen $LISTEN --backends $BACKENDS --workers 1 --no-pin --no-forward-headers'
fi
[[ -n "$cmd" ]] || { echo "callgrind.sh: give the command of proxy $name" >&2; exit 2; }
CONNS=${CONNS:-16}
WARM=${WARM:-6}
MEASURE=${MEASURE:-12}
TOP=${TOP:-40}
PROXY_PORT=${PROXY_PORT:-18390}
read -r BP1 BP2 <<<"${BACKEND_PORTS:-9101 9102}"
for bin in valgrind callgrind_control nginx wrk curl python3; do
  command -v "$bin" >/dev/null || { echo "callgrind.sh: $bin not found" >&2; exit 1; }
done

RUN=$(mktemp -d /tmp/callgrind-XXXXXX)
chmod 755 "$RUN"
PIDS=()
VG=
cleanup() {
  local p
  # SIGKILL for valgrind (a thread waiting in io_uring_enter under its lock
  # may never see SIGTERM); nginx masters get SIGTERM, so they stop their
  # workers too.
  [[ -n "$VG" ]] && kill -9 "$VG" 2>/dev/null
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "$BP1" "$BP2" "$PROXY_PORT"; do
  port_free "$p" || { echo "callgrind.sh: port $p is in use: not measuring someone else's server" >&2; exit 1; }
done

mkdir -p "$RUN/tmp"
for p in "$BP1" "$BP2"; do
  cat >"$RUN/backend-$p.conf" <<EOF
worker_processes 1;
pid $RUN/backend-$p.pid;
error_log $RUN/backend-$p.err warn;
events { worker_connections 4096; }
http {
  access_log off;
  default_type text/plain;
  keepalive_timeout 120s; keepalive_requests 100000000;
  client_body_temp_path $RUN/tmp/c$p; proxy_temp_path $RUN/tmp/p$p;
  fastcgi_temp_path $RUN/tmp/f$p; uwsgi_temp_path $RUN/tmp/u$p; scgi_temp_path $RUN/tmp/s$p;
  server { listen 127.0.0.1:$p; location / { return 200 "ok\\n"; } }
}
EOF
  nginx -p "$RUN" -e "$RUN/backend-$p.err" -c "$RUN/backend-$p.conf" -g 'daemon off;' &
  PIDS+=($!)
done

export LISTEN=127.0.0.1:$PROXY_PORT BACKENDS=127.0.0.1:$BP1,127.0.0.1:$BP2
# The proxy itself runs under valgrind, not a shell or `env` that would exec
# it: leading `env` and VAR=value words become the environment.
eval "set -- $cmd"
[[ "$1" == env ]] && shift
while [[ $# -gt 0 && "$1" =~ ^[A-Za-z_][A-Za-z0-9_]*= ]]; do export "${1?}"; shift; done
(cd "$RUN" && exec valgrind --tool=callgrind --separate-threads=yes --compress-strings=no \
  --compress-pos=no --callgrind-out-file="$RUN/cg.out" "$@") >"$RUN/proxy.log" 2>&1 &
VG=$!
for _ in $(seq 1 300); do
  curl -sf -o /dev/null "http://$LISTEN/" && break
  kill -0 "$VG" 2>/dev/null || { echo "callgrind.sh: the proxy exited; see $RUN/proxy.log" >&2; exit 1; }
  sleep 0.2
done
curl -sf -o /dev/null "http://$LISTEN/" || { echo "callgrind.sh: the proxy never answered; see $RUN/proxy.log" >&2; exit 1; }

wrk -t1 -c"$CONNS" -d"${WARM}s" "http://$LISTEN/" >"$RUN/wrk-warm.txt"
callgrind_control -d "$VG" >/dev/null 2>&1
wrk -t1 -c"$CONNS" -d"${MEASURE}s" "http://$LISTEN/" >"$RUN/wrk.txt"
callgrind_control -d "$VG" >/dev/null 2>&1
requests=$(awk '/requests in/ {print $1}' "$RUN/wrk.txt")
if grep -q "Non-2xx\|Socket errors" "$RUN/wrk.txt"; then
  echo "callgrind.sh: wrk saw errors:" >&2
  grep "Non-2xx\|Socket errors" "$RUN/wrk.txt" >&2
  exit 1
fi

echo "$name: $requests requests in ${MEASURE} s under callgrind, $CONNS connections (files in $RUN)"
python3 - "$RUN" "$requests" "$TOP" <<'EOF'
import collections, glob, re, sys
run, requests, top = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def self_costs(path):
    costs, fn, after_call = collections.Counter(), None, False
    for line in open(path, errors="replace"):
        if line.startswith("fn="):
            fn = line[3:].strip()
        elif line.startswith("calls="):
            after_call = True  # the next cost line is the call's inclusive cost
        elif line[:1].isdigit():
            if after_call:
                after_call = False
            elif fn:
                costs[fn] += int(line.split()[1])
    return costs
# Part 2 of each thread is the measured window.
parts = {p: self_costs(p) for p in glob.glob(f"{run}/cg.out.2-*")}
path, costs = max(parts.items(), key=lambda kv: sum(kv[1].values()))
total = sum(costs.values())
print(f"busiest thread ({path.rsplit('.', 1)[-1]}): {total:,} instructions, {total / requests:,.0f} per request")
print(f"{'per req':>8} {'share':>6}  function (self cost)")
for fn, c in costs.most_common(top):
    print(f"{c / requests:8.0f} {100 * c / total:5.1f}%  {fn[:140]}")
EOF
