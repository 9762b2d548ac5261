#!/usr/bin/env bash
# The helloworld server and client, end to end (the quickstart's demo),
# on 127.0.0.1 with a port the OS picks. Stops what it started.
set -euo pipefail
build=${1:-build}
server=$build/examples/helloworld/greeter_server
client=$build/examples/helloworld/greeter_client

portfile=$(mktemp)
"$server" --port=0 >"$portfile" &
server_pid=$!
trap 'kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; rm -f "$portfile"' EXIT

# Wait (at most 10 s) for the server to say which port it bound.
port=""
for _ in $(seq 1 200); do
  port=$(sed -n 's/^PORT \([0-9]*\)$/\1/p' "$portfile")
  [ -n "$port" ] && break
  kill -0 "$server_pid" 2>/dev/null || { echo "demo: server exited" >&2; exit 1; }
  sleep 0.05
done
[ -n "$port" ] || { echo "demo: server did not start" >&2; exit 1; }

echo "greeter_server listening on 127.0.0.1:$port"
for name in world h2rpc "C programmers"; do
  printf 'greeter_client --name="%s": ' "$name"
  "$client" --target="127.0.0.1:$port" --name="$name"
done
kill -TERM "$server_pid"
wait "$server_pid"
trap 'rm -f "$portfile"' EXIT
echo "server stopped cleanly"
