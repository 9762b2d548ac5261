#!/usr/bin/env bash
# The demo behind `make demo` (examples/microservices): h2rpc-registry, three
# catalog replicas, two pricing replicas and a frontend, each a process of
# its own on 127.0.0.1, found through the registry. shop_load drives quotes
# through the frontend while this script kills a catalog replica with
# SIGKILL and brings it back, then makes one pricing replica fail every call
# for a while (its fault injector, through `h2rpc fault`). shop_load prints
# the summary and its checks; the timeline is plotted to demo.png.
#
#   scripts/demo.sh [BUILD_DIR]    DEMO_SECONDS=20 (measured load)
#                                  DEMO_OUT=BUILD_DIR/demo (logs, CSV, plot)
# Stops everything it started, and exits with shop_load's status.
set -euo pipefail
build=${1:-build}
seconds=${DEMO_SECONDS:-20}
out=${DEMO_OUT:-$build/demo}
bin=$build/examples/microservices
cli=$build/registry/h2rpc
mkdir -p "$out"
rm -rf "${out:?}"/*

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

# Arithmetic on times in seconds (awk: bash has integers only).
calc() { awk "BEGIN { x = $1; print (x > 0 ? x : 0) }"; }
say() { printf '[demo %5.1fs] %s\n' "$(calc "$(date +%s.%N) - $t0")" "$*"; }
t0=$(date +%s.%N)

# start NAME CMD...: runs CMD in the background (log in $out/NAME.log), waits
# at most 10 s for its "PORT n" line, and sets PORT and PID.
start() {
  local name=$1
  shift
  "$@" >"$out/$name.log" 2>&1 &
  PID=$!
  pids+=("$PID")
  PORT=""
  for _ in $(seq 1 200); do
    PORT=$(sed -n 's/^PORT \([0-9]*\)$/\1/p' "$out/$name.log")
    [ -n "$PORT" ] && return 0
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.05
  done
  echo "demo: $name did not start; its log:" >&2
  cat "$out/$name.log" >&2
  exit 1
}

# event LABEL: what was injected, with the time, for shop_load's summary.
event() {
  echo "$(date +%s.%N) $1" >>"$out/events.txt"
  say "$1"
}

start registry "$build/registry/h2rpc-registry" --listen=127.0.0.1:0 \
  --data-dir="$out/registry-data"
registry=registry://127.0.0.1:$PORT
say "h2rpc-registry on 127.0.0.1:$PORT"

names=""
declare -A port_of pid_of
backend() { # ROLE ID
  start "$2" "$bin/backend" --role="$1" --id="$2" --registry="$registry" \
    --ttl_ms=2000
  port_of[$2]=$PORT
  pid_of[$2]=$PID
}
for id in catalog-1 catalog-2 catalog-3; do backend catalog $id; done
for id in pricing-1 pricing-2; do backend pricing $id; done
for id in "${!port_of[@]}"; do names+="$id=127.0.0.1:${port_of[$id]},"; done
say "catalog x3 (ring_hash by item id), pricing x2 (round_robin, breaker)"

start frontend "$bin/frontend" --registry="$registry"
frontend=127.0.0.1:$PORT
say "frontend on $frontend; driving quotes for $seconds s"

"$bin/shop_load" --target="$frontend" --duration="$seconds" --concurrency=8 \
  --deadline_ms=500 --timeline="$out/timeline.csv" \
  --breakers="$out/breakers.csv" --events="$out/events.txt" \
  --marks="$out/marks.csv" --names="${names%,}" >"$out/shop_load.out" 2>&1 &
load_pid=$!
pids+=("$load_pid")

# The script of faults, in fractions of the run (plus shop_load's 1 s
# warm-up): catalog-2 dies at 20% and returns at 40%; pricing-1 fails every
# call from 55% to 70%. The last 30% leave the breaker time to close: at
# 20 s, 6 s, more than its longest open interval (4 s + 20% jitter).
at() { sleep "$(calc "1 + $1 * $seconds - ($(date +%s.%N) - $t_load)")"; }
t_load=$(date +%s.%N)
# Each event is logged just before it happens, so nothing that it causes
# comes before it on the time axis.
at 0.20
event "kill -9 catalog-2"
kill -KILL "${pid_of[catalog-2]}"
wait "${pid_of[catalog-2]}" 2>/dev/null || true
at 0.40
event "catalog-2 back"
backend catalog catalog-2
say "catalog-2 serving again on port ${port_of[catalog-2]}"
at 0.55
event "fault on: pricing-1 fails every call (UNAVAILABLE)"
"$cli" fault set --target="127.0.0.1:${port_of[pricing-1]}" \
  --method=/shop.v1.Pricing/ --error_rate=1 --code=UNAVAILABLE
at 0.70
event "fault off: pricing-1 healthy again"
"$cli" fault clear --target="127.0.0.1:${port_of[pricing-1]}"

status=0
wait "$load_pid" || status=$?
cat "$out/shop_load.out"

if command -v gnuplot >/dev/null && [ -s "$out/timeline.csv" ]; then
  # The event marks, as gnuplot commands the plot script loads.
  awk -F, 'NR > 1 { gsub(/"/, "", $2);
    printf "set arrow from %s, graph 0 to %s, graph 1 nohead dt 2 lc \"gray40\"\n", $1, $1;
    printf "set label \"%s\" at %s, graph 0.98 rotate by -90 offset 0.6,0 font \",8\" tc \"gray30\"\n", $2, $1 }' \
    "$out/marks.csv" >"$out/marks.gp"
  ncols=$(head -1 "$out/timeline.csv" | awk -F, '{ print NF }')
  gnuplot -e "dir='$out'; ncols=$ncols" scripts/demo_plot.gp &&
    echo "plot: $out/demo.png"
else
  echo "plot: skipped (gnuplot is not installed)"
fi
echo "logs, timeline.csv and breakers.csv: $out/"
exit "$status"
