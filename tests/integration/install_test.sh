#!/usr/bin/env bash
# Installs the build into a temporary prefix, then builds against it the way
# users do: a CMake project with find_package(h2rpc) and h2rpc_generate()
# (tests/consumer), and a program compiled with pkg-config.
# Usage: install_test.sh <h2rpc build dir> <h2rpc source dir>
set -euo pipefail
build=$1 src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >"$work/install.log"
for f in bin/protoc-gen-h2rpc include/h2rpc/h2rpc.h lib/libh2rpc.a \
         lib/libh2rpc.so lib/pkgconfig/h2rpc.pc lib/cmake/h2rpc/h2rpcConfig.cmake; do
  [ -e "$work/prefix/$f" ] || { echo "not installed: $f" >&2; exit 1; }
done
cmake -S "$src/tests/consumer" -B "$work/consumer" \
  -DCMAKE_PREFIX_PATH="$work/prefix" >"$work/configure.log"
cmake --build "$work/consumer" >"$work/build.log"
LD_LIBRARY_PATH="$work/prefix/lib" "$work/consumer/shop"
# The flags are meant to split into words.
# shellcheck disable=SC2046
PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig" cc -std=c11 \
  "$src/tests/consumer/pkgconfig_main.c" -o "$work/pc" \
  $(PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig" pkg-config --cflags --libs h2rpc)
LD_LIBRARY_PATH="$work/prefix/lib" "$work/pc"
