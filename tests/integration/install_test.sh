#!/usr/bin/env bash
# Installs the build into a temporary prefix, then builds against it the way
# users do: a CMake project with find_package(h2rpc) and h2rpc_generate()
# (tests/consumer, which also builds examples/helloworld and runs a call),
# and a program compiled with pkg-config.
# Usage: install_test.sh <h2rpc build dir> <h2rpc source dir>
set -euo pipefail
build=$1 src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >"$work/install.log"
for f in bin/protoc-gen-h2rpc bin/h2rpc-registry bin/h2rpc include/h2rpc/h2rpc.h lib/libh2rpc.a \
         lib/libh2rpc.so lib/pkgconfig/h2rpc.pc lib/cmake/h2rpc/h2rpcConfig.cmake; do
  [ -e "$work/prefix/$f" ] || { echo "not installed: $f" >&2; exit 1; }
done
cmake -S "$src/tests/consumer" -B "$work/consumer" \
  -DCMAKE_PREFIX_PATH="$work/prefix" -DH2RPC_EXAMPLES_DIR="$src/examples" \
  >"$work/configure.log"
cmake --build "$work/consumer" >"$work/build.log"
LD_LIBRARY_PATH="$work/prefix/lib" "$work/consumer/shop"
# helloworld, built against the prefix: a server on a free port and one call.
LD_LIBRARY_PATH="$work/prefix/lib" "$work/consumer/greeter_server" --port=0 \
  >"$work/server.out" &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do
  grep -q '^PORT ' "$work/server.out" && break
  sleep 0.05
done
port=$(awk '/^PORT /{print $2}' "$work/server.out")
[ -n "$port" ] || { echo "greeter_server did not start" >&2; exit 1; }
reply=$(LD_LIBRARY_PATH="$work/prefix/lib" timeout 10 \
  "$work/consumer/greeter_client" --target="127.0.0.1:$port" --name=install)
echo "$reply"
case "$reply" in *"Hello install"*) ;; *) echo "unexpected reply" >&2; exit 1 ;; esac
kill "$server"
wait "$server" || true
# The flags are meant to split into words.
# shellcheck disable=SC2046
PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig" cc -std=c11 \
  "$src/tests/consumer/pkgconfig_main.c" -o "$work/pc" \
  $(PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig" pkg-config --cflags --libs h2rpc)
LD_LIBRARY_PATH="$work/prefix/lib" "$work/pc"
