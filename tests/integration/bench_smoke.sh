#!/usr/bin/env bash
# Smoke test of the benchmark pair: bench_server answers, bench_client runs
# for one second and prints its JSON line with no errors. Figures are not
# judged here (benchmarks never assert timings).
# Usage: bench_smoke.sh <bench_server> <bench_client>
set -euo pipefail
server=$1 client=$2
out=$(mktemp)
"$server" --port=0 >"$out" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -f "$out"' EXIT
port=""
for _ in $(seq 1 200); do
  port=$(sed -n 's/^PORT \([0-9]*\)$/\1/p' "$out")
  [ -n "$port" ] && break
  sleep 0.05
done
[ -n "$port" ] || { echo "bench_server did not start" >&2; exit 1; }
line=$("$client" --target="127.0.0.1:$port" --concurrency=8 --channels=2 \
  --duration=1 --warmup=0 --req_size=1024 --resp_size=1024)
echo "$line"
case "$line" in
  *'"errors":0'*'"calls_per_cpu_s"'*) ;;
  *) echo "unexpected bench_client output" >&2; exit 1 ;;
esac
line=$("$client" --target="127.0.0.1:$port" --mode=pingpong --concurrency=4 \
  --channels=2 --duration=1 --warmup=0)
echo "$line"
case "$line" in
  *'"errors":0'*) ;;
  *) echo "unexpected bench_client pingpong output" >&2; exit 1 ;;
esac
