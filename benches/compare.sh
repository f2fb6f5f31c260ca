#!/usr/bin/env bash
# benches/compare.sh — re-run the fastlb vs NGINX vs HAProxy comparison in one command.
#
#   benches/compare.sh                    # build fastlb, full comparison (~30 min + build on 2 cores)
#   DRY_RUN=1 benches/compare.sh          # print every command instead of running it
#   FASTLB_BIN=target/release/fastlb WORKERS_LIST=1 ROUNDS=1 SCENARIOS=small:64 SKIP_IDLE=1 \
#     benches/compare.sh                  # quick smoke run with an existing binary (~1 min)
#
# It drives the shared peer-benchmark harness (shared/bench: peers.sh, campaign.sh,
# summarize.py, idle_conns.py; its README.md explains the topology, CPU placement and
# how to read the numbers) with fastlb plugged in as a custom proxy:
#   1. unless FASTLB_BIN is given (or fastlb is not in PROXIES): `cargo build --release -p fastlb`
#      (from the repo root);
#   2. for each w in WORKERS_LIST, one interleaved campaign (campaign.sh with WORKERS_LIST=w,
#      PROXIES="direct nginx haproxy fastlb") -> $OUT_DIR/campaign-w<w>.csv; campaign.sh
#      prints its own table at the end of each;
#   3. unless SKIP_IDLE=1: RSS per idle keep-alive connection, IDLE_ROUNDS interleaved rounds
#      (order rotated each round) of `MODE=idle IDLE_KIND=request WORKERS=1 peers.sh <proxy>`
#      for every proxy of PROXIES but direct -> $OUT_DIR/idle.csv;
#   4. summary tables of all of it (summarize.py --max-foreign $MAX_FOREIGN) -> stdout and
#      $OUT_DIR/summary.md, and the chart (benches/chart.py) -> $OUT_DIR/chart.png.
# $OUT_DIR/meta.txt records the commit, binary and settings. The harness starts and stops
# every server itself (127.0.0.1 only) and refuses to run if its ports (18080, 9001, 9002)
# are taken; it needs nginx, haproxy, wrk, curl (run shared/bench/setup.sh once).
#
# fastlb runs as (the harness expands the $ variables; see "Plugging in" in its README):
#   <abs FASTLB_BIN> --listen $LISTEN --backends $BACKENDS --workers $WORKERS --no-forward-headers
# (--no-forward-headers: neither peer adds X-Forwarded-* headers in the harness).
#
# Env (defaults in brackets); anything else is passed through to campaign.sh / peers.sh
# (e.g. QUIET_MAX_WAIT, RETRIES, RETRY_SLEEP, DURATION, NICE, RT_PRIO; see their headers):
#   BENCH_DIR       the harness  [<repo root>/../shared/bench]
#   FASTLB_BIN      fastlb binary to measure (relative: to the current directory); when set,
#                   nothing is built  [<repo root>/target/release/fastlb, built first]
#   FASTLB_EXTRA_ARGS extra fastlb flags, appended (e.g. --no-pin)  [""]
#   PROXY_CMD_fastlb the whole fastlb start command instead (single-quote it; the build step
#                   still runs unless FASTLB_BIN is set)
#   PROXIES         proxies compared; "floor" is benches/relay_floor.rs (the bare compio
#                   relay fastlb's CPU is compared with; built unless FLOOR_BIN is given;
#                   PROXY_CMD_floor='env FIXED=1 …' for its registered-file variant);
#                   other custom names need PROXY_CMD_<name>  ["direct nginx haproxy fastlb"]
#   SCENARIOS       NAME:CONNS list (small | 64k | 1m)  ["small:64 small:256 64k:64 1m:64"]
#   WORKERS_LIST    proxy workers values, one campaign CSV each  ["1 2"]
#   ROUNDS          interleaved rounds per campaign  [3]
#   CAMPAIGN_MAX_S  per campaign (= per workers value): no retry of a noisy run after this  [2400]
#   MAX_FOREIGN     runs with more foreign CPU (%) are retried by campaign.sh and left out of
#                   the medians by summarize.py / chart.py when a cleaner run exists  [10]
#   SKIP_IDLE       1 = no idle-connection measurement  [0]
#   IDLE_ROUNDS     idle-connection rounds  [3]
#   IDLE_CONNS      idle connections opened per idle run  [10000]
#   IDLE_CONNS_<name> per-proxy override. Default for haproxy: at most the harness's haproxy
#                   `maxconn` (8000 in peers.sh) minus 500, as connections past maxconn are never
#                   accepted and the idle run would hang until idle_conns.py's 120 s timeout.
#                   (fastlb's CLI mode accepts 10,000 client connections per worker.)
#   OUT_DIR         where the CSVs, summary.md, chart.png, meta.txt go; CSVs are appended to,
#                   so re-using a directory adds runs  [<repo root>/bench-results/<UTC time>]
#   DRY_RUN         1 = print the commands (and checks) instead of running them  [0]
#
# Exit status: non-zero if a campaign failed (it stops there), or, after the summary and chart,
# if an idle run or the chart failed. Only compare numbers from the same interleaved campaign.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DRY_RUN=${DRY_RUN:-0}
BENCH_DIR=${BENCH_DIR:-$ROOT/../shared/bench}
PROXIES=${PROXIES:-direct nginx haproxy fastlb}
SCENARIOS=${SCENARIOS:-small:64 small:256 64k:64 1m:64}
WORKERS_LIST=${WORKERS_LIST:-1 2}
ROUNDS=${ROUNDS:-3}
CAMPAIGN_MAX_S=${CAMPAIGN_MAX_S:-2400}
MAX_FOREIGN=${MAX_FOREIGN:-10}
SKIP_IDLE=${SKIP_IDLE:-0}
IDLE_ROUNDS=${IDLE_ROUNDS:-3}
IDLE_CONNS=${IDLE_CONNS:-10000}
FASTLB_EXTRA_ARGS=${FASTLB_EXTRA_ARGS:-}
OUT_DIR=${OUT_DIR:-$ROOT/bench-results/$(date -u +%Y%m%dT%H%M%SZ)}

die() { echo "compare.sh: $*" >&2; exit 1; }
note() { echo "# $*" >&2; }

# q ARG: ARG quoted for a copy-pastable command line (NAME=VALUE keeps NAME unquoted).
q() {
  local a=$1 name='' sq="'" esc="'\\''"
  if [[ "$a" =~ ^[A-Za-z0-9_@%+=:,./-]+$ ]]; then printf '%s' "$a"; return; fi
  if [[ "$a" =~ ^([A-Za-z_][A-Za-z0-9_]*=)(.*)$ ]]; then name=${BASH_REMATCH[1]}; a=${BASH_REMATCH[2]}; fi
  printf "%s'%s'" "$name" "${a//$sq/$esc}"
}
cmdline() { local a s=; for a in "$@"; do s+="${s:+ }$(q "$a")"; done; printf '%s' "$s"; }
# run CMD...: print it; run it unless DRY_RUN=1.
run() {
  if [[ "$DRY_RUN" == 1 ]]; then echo "+ $(cmdline "$@")"; return 0; fi
  echo "+ $(cmdline "$@")" >&2
  "$@"
}
# run_in DIR CMD...: run in DIR.
run_in() {
  local dir=$1; shift
  if [[ "$DRY_RUN" == 1 ]]; then echo "+ cd $(q "$dir") && $(cmdline "$@")"; return 0; fi
  echo "+ cd $(q "$dir") && $(cmdline "$@")" >&2
  (cd "$dir" && "$@")
}
# run_tee FILE CMD...: run, copying stdout to FILE.
run_tee() {
  local file=$1; shift
  if [[ "$DRY_RUN" == 1 ]]; then echo "+ $(cmdline "$@") | tee $(q "$file")"; return 0; fi
  echo "+ $(cmdline "$@") | tee $(q "$file")" >&2
  "$@" | tee "$file"
}
as_root() { if [[ $EUID -eq 0 ]]; then run "$@"; elif command -v sudo >/dev/null; then run sudo "$@"; else return 1; fi; }

[[ "$DRY_RUN" == 1 ]] && note "DRY_RUN=1: printing the commands, running none of them"

# ------------------------------------------------------------------ preflight
[[ -d "$BENCH_DIR" ]] || die "benchmark harness not found: $BENCH_DIR does not exist (set BENCH_DIR to the shared/bench directory holding peers.sh, campaign.sh, summarize.py)"
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
for f in campaign.sh peers.sh summarize.py idle_conns.py; do
  [[ -f "$BENCH_DIR/$f" ]] || die "benchmark harness incomplete: $BENCH_DIR/$f missing (set BENCH_DIR to shared/bench)"
done
read -r -a P <<<"$PROXIES"
(( ${#P[@]} > 0 )) || die "PROXIES is empty"
read -r -a WL <<<"$WORKERS_LIST"
(( ${#WL[@]} > 0 )) || die "WORKERS_LIST is empty"
for w in "${WL[@]}"; do [[ "$w" =~ ^[1-9][0-9]*$ ]] || die "WORKERS_LIST: '$w' is not a positive integer"; done
for v in ROUNDS IDLE_ROUNDS IDLE_CONNS CAMPAIGN_MAX_S; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v='${!v}' is not a non-negative integer"
done

tools=(nginx wrk taskset curl ss python3)
[[ " ${P[*]} " == *" haproxy "* ]] && tools+=(haproxy)
missing=()
for t in "${tools[@]}"; do command -v "$t" >/dev/null || missing+=("$t"); done
if (( ${#missing[@]} )); then
  msg="missing ${missing[*]}: run $BENCH_DIR/setup.sh once (installs nginx-light, haproxy, wrk, curl)"
  if [[ "$DRY_RUN" == 1 ]]; then note "would stop here: $msg"; else die "$msg"; fi
fi

# matplotlib for the chart, checked now rather than after half an hour of measuring.
CHART_PY=
for py in python3 /usr/bin/python3; do
  if command -v "$py" >/dev/null && "$py" -c 'import matplotlib' 2>/dev/null; then
    CHART_PY=$(command -v "$py"); break
  fi
done
if [[ -z "$CHART_PY" ]]; then
  note "matplotlib not found for python3 (needed for chart.png): installing Debian's python3-matplotlib with apt-get"
  if ! as_root apt-get install -y python3-matplotlib; then
    note "apt-get install failed: refreshing the package lists (apt-get update) and retrying"
    if ! { as_root apt-get update && as_root apt-get install -y python3-matplotlib; }; then
      die "could not install python3-matplotlib (needs root or sudo); install it, or run with a python3 that has matplotlib"
    fi
  fi
  CHART_PY=/usr/bin/python3
  if [[ "$DRY_RUN" != 1 ]]; then
    "$CHART_PY" -c 'import matplotlib' 2>/dev/null || die "python3-matplotlib installed but $CHART_PY cannot import matplotlib"
  fi
fi

# ------------------------------------------------------------------ fastlb binary
HAS_FASTLB=0
[[ " ${P[*]} " == *" fastlb "* ]] && HAS_FASTLB=1
if [[ -z "${FASTLB_BIN:-}" ]]; then
  target=${CARGO_TARGET_DIR:-target}
  [[ "$target" == /* ]] || target=$ROOT/$target
  FASTLB_BIN=$target/release/fastlb
  (( ! HAS_FASTLB )) || run_in "$ROOT" cargo build --release -p fastlb
fi
[[ "$FASTLB_BIN" == /* ]] || FASTLB_BIN=$PWD/$FASTLB_BIN
if (( HAS_FASTLB )) && [[ ! -x "$FASTLB_BIN" ]]; then
  if [[ "$DRY_RUN" == 1 ]]; then note "(not there yet: $FASTLB_BIN)"; else die "fastlb binary not found or not executable: $FASTLB_BIN"; fi
fi
if [[ -z "${PROXY_CMD_fastlb:-}" ]]; then
  # The single-quoted part is expanded by the harness (bash -c "exec $PROXY_CMD"), not here.
  # shellcheck disable=SC2016
  PROXY_CMD_fastlb="$(printf '%q' "$FASTLB_BIN")"' --listen $LISTEN --backends $BACKENDS --workers $WORKERS --no-forward-headers'
  [[ -z "$FASTLB_EXTRA_ARGS" ]] || PROXY_CMD_fastlb+=" $FASTLB_EXTRA_ARGS"
fi
export PROXY_CMD_fastlb
# The floor: benches/relay_floor.rs, a bare compio relay (same ring set-up, no HTTP work).
if [[ " ${P[*]} " == *" floor "* && -z "${PROXY_CMD_floor:-}" ]]; then
  if [[ -z "${FLOOR_BIN:-}" ]]; then
    target=${CARGO_TARGET_DIR:-target}
    [[ "$target" == /* ]] || target=$ROOT/$target
    FLOOR_BIN=$target/release/examples/relay_floor
    run_in "$ROOT" cargo build --release --example relay_floor
  fi
  [[ "$FLOOR_BIN" == /* ]] || FLOOR_BIN=$PWD/$FLOOR_BIN
  # shellcheck disable=SC2016
  PROXY_CMD_floor="$(printf '%q' "$FLOOR_BIN")"' $LISTEN $BACKENDS'
fi
CUSTOM_ENV=()                         # PROXY_CMD_<name>=... of every custom proxy, for campaign.sh
for p in "${P[@]}"; do
  case "$p" in direct|nginx|haproxy) continue ;; esac
  v="PROXY_CMD_${p//[^A-Za-z0-9_]/_}"
  [[ -n "${!v:-}" ]] || die "proxy '$p' in PROXIES needs its start command in $v (see $BENCH_DIR/README.md)"
  CUSTOM_ENV+=("$v=${!v}")
done

# ------------------------------------------------------------------ output dir
run mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" 2>/dev/null && pwd || echo "$OUT_DIR")
IDLE_CSV=$OUT_DIR/idle.csv
CSVS=()
for w in "${WL[@]}"; do CSVS+=("$OUT_DIR/campaign-w$w.csv"); done
if [[ "$DRY_RUN" == 1 ]]; then
  echo "+ write $(q "$OUT_DIR/meta.txt") (commit, binary, settings)"
else
  {
    echo "started: $(date -u +%FT%TZ)"
    echo "commit: $(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)$( [[ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ]] && echo ' (work tree has uncommitted changes)')"
    (( ! HAS_FASTLB )) || echo "fastlb: $FASTLB_BIN ($(sha256sum "$FASTLB_BIN" | cut -c1-16), built $(date -u -r "$FASTLB_BIN" +%FT%TZ))"
    echo "PROXY_CMD_fastlb: $PROXY_CMD_fastlb"
    echo "harness: $BENCH_DIR"
    for v in PROXIES SCENARIOS WORKERS_LIST ROUNDS CAMPAIGN_MAX_S MAX_FOREIGN SKIP_IDLE IDLE_ROUNDS IDLE_CONNS; do
      echo "$v: ${!v}"
    done
    echo "machine: $(nproc) CPUs, $(uname -sr)"
  } >"$OUT_DIR/meta.txt"
fi
note "results -> $OUT_DIR"
finished=0
on_exit() { local rc=$?; (( rc == 0 || finished )) || note "stopped (exit $rc); results so far in $OUT_DIR"; }
trap on_exit EXIT

# ------------------------------------------------------------------ campaigns
for i in "${!WL[@]}"; do
  run env WORKERS_LIST="${WL[i]}" OUT="${CSVS[i]}" PROXIES="$PROXIES" SCENARIOS="$SCENARIOS" \
    ROUNDS="$ROUNDS" CAMPAIGN_MAX_S="$CAMPAIGN_MAX_S" MAX_FOREIGN="$MAX_FOREIGN" \
    "${CUSTOM_ENV[@]}" "$BENCH_DIR/campaign.sh"
done

# ------------------------------------------------------------------ idle connections
idle_failed=()
if [[ "$SKIP_IDLE" != 1 ]]; then
  IP=()
  for p in "${P[@]}"; do [[ "$p" == direct ]] || IP+=("$p"); done
  hx_maxconn=$(sed -n 's/^[[:space:]]*maxconn[[:space:]][[:space:]]*\([0-9][0-9]*\)[[:space:]]*$/\1/p' "$BENCH_DIR/peers.sh" | head -n1)
  declare -A CONNS=()
  for p in "${IP[@]}"; do
    v="IDLE_CONNS_${p//[^A-Za-z0-9_]/_}"
    CONNS[$p]=${!v:-$IDLE_CONNS}
    if [[ "$p" == haproxy && -n "$hx_maxconn" ]]; then
      if [[ -z "${!v:-}" ]] && (( IDLE_CONNS > hx_maxconn - 500 )); then
        CONNS[$p]=$(( hx_maxconn - 500 ))
        note "haproxy: the harness configures 'maxconn $hx_maxconn', so its idle runs use ${CONNS[$p]} connections (IDLE_CONNS_haproxy overrides)"
      elif (( CONNS[$p] > hx_maxconn - 64 )); then
        note "warning: IDLE_CONNS_haproxy=${CONNS[$p]} is near or above the harness's haproxy 'maxconn $hx_maxconn': its idle runs will likely time out"
      fi
    fi
  done
  n=${#IP[@]}
  for ((r = 1; r <= IDLE_ROUNDS; r++)); do
    for ((k = 0; k < n; k++)); do
      p=${IP[(k + r - 1) % n]}
      base=(env MODE=idle IDLE_KIND=request WORKERS=1 IDLE_CONNS="${CONNS[$p]}" IDLE_RESULTS="$IDLE_CSV")
      case "$p" in
        nginx|haproxy) cmd=("${base[@]}" "$BENCH_DIR/peers.sh" "$p") ;;
        *) v="PROXY_CMD_${p//[^A-Za-z0-9_]/_}"
           cmd=("${base[@]}" PROXY_NAME="$p" PROXY_CMD="${!v}" "$BENCH_DIR/peers.sh" custom) ;;
      esac
      run "${cmd[@]}" || { note "idle run failed: $p, round $r"; idle_failed+=("$p/round$r"); }
    done
  done
fi

# ------------------------------------------------------------------ summary and chart
idle_args=()
if [[ "$SKIP_IDLE" != 1 ]] && { [[ "$DRY_RUN" == 1 ]] || [[ -s "$IDLE_CSV" ]]; }; then idle_args=(--idle "$IDLE_CSV"); fi
run_tee "$OUT_DIR/summary.md" python3 "$BENCH_DIR/summarize.py" "${CSVS[@]}" --max-foreign "$MAX_FOREIGN" "${idle_args[@]}"
chart_args=()
[[ ${#idle_args[@]} -eq 0 ]] || chart_args=(--idle "$IDLE_CSV")
chart_ok=1
run "$CHART_PY" "$ROOT/benches/chart.py" --bench-dir "$BENCH_DIR" --max-foreign "$MAX_FOREIGN" \
  "${chart_args[@]}" -o "$OUT_DIR/chart.png" "${CSVS[@]}" || { chart_ok=0; note "chart failed"; }

finished=1
[[ "$DRY_RUN" == 1 ]] && { note "dry run: nothing was run or written"; exit 0; }
note "done in $((SECONDS / 60)) min: $OUT_DIR (campaign-w*.csv, ${idle_args[*]:+idle.csv, }summary.md, chart.png, meta.txt)"
(( ${#idle_failed[@]} == 0 )) || { note "failed idle runs: ${idle_failed[*]}"; exit 1; }
(( chart_ok )) || exit 1
