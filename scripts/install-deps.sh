#!/usr/bin/env bash
# Installs the Debian 12 packages h2rpc needs to build and test.
# Idempotent: packages already present are not touched, and nothing runs
# when everything is there. As root it runs apt-get itself; otherwise it
# prints the exact command to run and exits non-zero.
set -euo pipefail

packages=(
  build-essential cmake pkg-config clang clang-format valgrind libclang-rt-14-dev
  libnanopb-dev nanopb
  protobuf-compiler libprotoc-dev
  libnghttp2-dev libev-dev libssl-dev
  check
  python3-grpcio python3-grpc-tools python3-protobuf python3-cryptography grpc-proto
  etcd-server etcd-client
  gnuplot-nox
)

# `--bench` adds what `make bench` needs: h2load and the gRPC C++ reference.
if [ "${1:-}" = "--bench" ]; then
  packages+=(nghttp2-client libgrpc++-dev protobuf-compiler-grpc)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

cmd="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "h2rpc needs these Debian packages: ${missing[*]}" >&2
  echo "Run as root:  apt-get update && $cmd" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
$cmd
