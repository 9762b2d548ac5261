#!/usr/bin/env bash
# Compiles every public header on its own, and every runtime source, with
# both gcc and clang under strict warnings (-Werror). Run by ctest as
# "warnings_gcc_clang"; usable by hand: scripts/check-warnings.sh [BUILD_DIR]
# (BUILD_DIR, default "build", holds the C the runtime generates from the
# protos it speaks: health, registry, etcd).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
cd "$root"
status=0
compilers=()
for cc in gcc clang; do
  command -v "$cc" >/dev/null && compilers+=("$cc")
done
[ ${#compilers[@]} -gt 0 ] || { echo "no compiler found" >&2; exit 1; }

strict=(-std=c11 -pedantic -Wall -Wextra -Werror -DPB_ENABLE_MALLOC=1)
for cc in "${compilers[@]}"; do
  before=$status
  status=0
  for h in rpc/include/h2rpc/*.h; do
    if ! printf '#include "%s"\ntypedef int h2rpc_check_nonempty;\n' "${h#rpc/include/}" |
        "$cc" "${strict[@]}" -Irpc/include -x c -fsyntax-only - ; then
      echo "FAIL [$cc] header $h does not compile on its own" >&2
      status=1
    fi
  done
  for src in rpc/*/*.c; do
    if ! "$cc" -std=c11 -D_GNU_SOURCE -DPB_ENABLE_MALLOC=1 \
        -DH2RPC_BUILDING_LIBRARY -Wall -Wextra -Wshadow -Wstrict-prototypes \
        -Wmissing-prototypes -Wno-unused-parameter -Werror \
        -Irpc/include -Irpc -I"$build/rpc/idl" -fsyntax-only "$src"; then
      echo "FAIL [$cc] $src" >&2
      status=1
    fi
  done
  [ $status -eq 0 ] && echo "$cc: headers and runtime sources compile warning-free"
  [ $before -eq 0 ] || status=1
done
exit $status
