#!/usr/bin/env bash
# make bench: h2rpc side by side with a gRPC C++ reference, in one run.
#
# Every pairing of server and client (h2rpc and gRPC, both ways), pinned the
# same way (server on CPU 0, client on CPU 1), in alternating rounds; h2load
# against each server; the footprint of each server. Medians and min-max go to
# $OUT/summary.md and into docs/benchmarks.md between its bench markers.
#
# The reference: GRPC_REF_SERVER and GRPC_REF_CLIENT (any gRPC
# BenchmarkService server and closed-loop client taking the same flags), or
# else the one in ../shared/bench/grpc-cpp, built here when its packages are
# installed. Without either, h2rpc is measured alone and the summary says so.
#
# Environment: BUILD (build), DUR (5 s measured), WARM (1 s), ROUNDS (3),
# OUT ($BUILD/bench-results), SCENARIOS ("S1 S2 S3 S4 S5").
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
BUILD=${BUILD:-build}
DUR=${DUR:-5}
WARM=${WARM:-1}
ROUNDS=${ROUNDS:-3}
OUT=${OUT:-$BUILD/bench-results}
SCENARIOS=${SCENARIOS:-"S1 S2 S3 S4 S5"}
SERVER_CPU=0
CLIENT_CPU=1

declare -A FLAGS=(
  [S1]="--mode=unary --concurrency=1 --channels=1"
  [S2]="--mode=unary --concurrency=64 --channels=4"
  [S3]="--mode=unary --concurrency=64 --channels=4 --req_size=1024 --resp_size=1024"
  [S4]="--mode=pingpong --concurrency=64 --channels=4"
  [S5]="--mode=unary --concurrency=8 --channels=1 --resp_size=262144"
)

log() { echo "[bench $(date -u +%H:%M:%S)] $*" >&2; }

h2_server=$BUILD/examples/bench/bench_server
h2_client=$BUILD/examples/bench/bench_client
[ -x "$h2_server" ] && [ -x "$h2_client" ] || { log "build first (make build)"; exit 1; }

ref_server=${GRPC_REF_SERVER:-}
ref_client=${GRPC_REF_CLIENT:-}
shared_ref="$root/../shared/bench/grpc-cpp"
if [ -z "$ref_server" ] && [ -d "$shared_ref" ] && command -v grpc_cpp_plugin >/dev/null; then
  refbuild="$BUILD/grpc-ref"
  [ -d "$refbuild" ] || cp -r "$shared_ref" "$refbuild" # make keeps it current
  if make -s -C "$refbuild" build/bench_server build/bench_client >/dev/null 2>&1; then
    ref_server="$refbuild/build/bench_server --api=async --threads=1"
    ref_client="$refbuild/build/bench_client"
  else
    log "could not build the gRPC C++ reference in $refbuild"
  fi
fi
servers=(h2rpc)
clients=(h2rpc)
if [ -n "$ref_server" ] && [ -n "$ref_client" ]; then
  servers+=(grpc)
  clients+=(grpc)
else
  log "no gRPC reference (set GRPC_REF_SERVER/GRPC_REF_CLIENT, or install"
  log "libgrpc++-dev protobuf-compiler-grpc): measuring h2rpc alone"
fi

mkdir -p "$OUT"
rm -f "$OUT"/*.jsonl
SPID=""
stop_server() {
  [ -n "$SPID" ] || return 0
  kill -TERM "$SPID" 2>/dev/null
  for _ in $(seq 50); do kill -0 "$SPID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$SPID" 2>/dev/null
  wait "$SPID" 2>/dev/null
  SPID=""
}
trap stop_server EXIT

port=$((40000 + RANDOM % 20000))
start_server() {  # $1: h2rpc | grpc
  port=$((port + 1))
  if [ "$1" = h2rpc ]; then
    taskset -c $SERVER_CPU "$h2_server" --port=$port >"$OUT/server-$1.log" 2>&1 &
  else
    # shellcheck disable=SC2086
    taskset -c $SERVER_CPU $ref_server --port=$port >"$OUT/server-$1.log" 2>&1 &
  fi
  SPID=$!
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.05
  done
  log "server $1 did not start"
  return 1
}

client_cmd() {  # $1: h2rpc | grpc
  if [ "$1" = h2rpc ]; then echo "$h2_client"; else echo "$ref_client"; fi
}

for round in $(seq "$ROUNDS"); do
  for srv in "${servers[@]}"; do
    start_server "$srv" || continue
    for cli in "${clients[@]}"; do
      for sc in $SCENARIOS; do
        # shellcheck disable=SC2046
        line=$(taskset -c $CLIENT_CPU timeout $((DUR + WARM + 60)) $(client_cmd "$cli") \
          --target=127.0.0.1:$port ${FLAGS[$sc]} --duration="$DUR" \
          --warmup="$WARM" 2>>"$OUT/client.err" | tail -1)
        [ -n "$line" ] || { log "$srv/$cli $sc: no result"; continue; }
        echo "{\"round\":$round,\"server\":\"$srv\",\"client\":\"$cli\",\"scenario\":\"$sc\",\"r\":$line}" >>"$OUT/runs.jsonl"
        log "round $round server=$srv client=$cli $sc: $(echo "$line" | grep -o '"qps":[0-9.]*')"
      done
    done
    if command -v h2load >/dev/null; then
      printf '\x00\x00\x00\x00\x00' >"$OUT/empty.bin"
      h2=$(taskset -c $CLIENT_CPU timeout 120 h2load -n 500000 -c 1 -m 64 -t 1 \
        -d "$OUT/empty.bin" -H 'content-type: application/grpc' -H 'te: trailers' \
        "http://127.0.0.1:$port/grpc.testing.BenchmarkService/UnaryCall" 2>&1 |
        sed -n 's/^finished in .*, \([0-9.]*\) req\/s.*/\1/p')
      [ -n "$h2" ] && echo "{\"round\":$round,\"server\":\"$srv\",\"h2load_rps\":$h2}" >>"$OUT/h2load.jsonl"
      log "round $round server=$srv h2load 1x64: ${h2:-failed} req/s"
    fi
    stop_server
  done
done

# Footprint: stripped server and the shared libraries it loads.
footprint() {  # $1 label, $2 binary
  local bin=$2 stripped="$OUT/$1.stripped" libs=0
  strip --strip-all -o "$stripped" "$bin" 2>/dev/null || cp "$bin" "$stripped"
  while read -r lib; do
    [ -f "$lib" ] && libs=$((libs + $(stat -L -c %s "$lib")))
  done < <(ldd "$bin" | awk '/=>/ {print $3} !/=>/ && /^\t\// {print $1}')
  echo "{\"server\":\"$1\",\"stripped_bytes\":$(stat -c %s "$stripped"),\"libs\":$(ldd "$bin" | wc -l),\"lib_bytes\":$libs}" >>"$OUT/footprint.jsonl"
}
rm -f "$OUT/footprint.jsonl"
footprint h2rpc "$h2_server"
[ -n "$ref_server" ] && footprint grpc "${ref_server%% *}"

/usr/bin/python3 "$root/scripts/bench_summary.py" "$OUT" "$DUR" "$ROUNDS" >"$OUT/summary.md"
cat "$OUT/summary.md"
/usr/bin/python3 "$root/scripts/bench_summary.py" --update "$root/docs/benchmarks.md" "$OUT/summary.md"
