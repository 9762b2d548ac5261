#!/usr/bin/env bash
# Starts an example server on a free port (it prints "PORT <n>"), runs the
# client against it with --target=127.0.0.1:<n>, stops the server by PID.
# Exits with the client's status. Usage: pair.sh <server> <client> [args...]
set -euo pipefail
server=$1 client=$2
shift 2
out=$(mktemp)
"$server" --port=0 >"$out" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -f "$out"' EXIT
port=""
for _ in $(seq 1 200); do
  port=$(sed -n 's/^PORT \([0-9]*\)$/\1/p' "$out")
  [ -n "$port" ] && break
  kill -0 "$pid" 2>/dev/null || { echo "server exited early" >&2; exit 1; }
  sleep 0.05
done
[ -n "$port" ] || { echo "server did not start within 10 s" >&2; exit 1; }
"$client" --target="127.0.0.1:$port" "$@"
