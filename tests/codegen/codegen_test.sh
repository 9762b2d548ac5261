#!/bin/bash
# codegen_test.sh: end-to-end tests of protoc-gen-h2rpc (run by ctest).
#
#   codegen_test.sh MODE WORKDIR [ARG]
#
# Modes:
#   patterns       generate every test proto, then check the output against
#                  expected/<file>.expected (lines that must / must not occur)
#   deterministic  two runs, and a run over all protos at once, give
#                  byte-identical files
#   compile CC     compile every generated header alone and every generated
#                  .c with CC -std=c11 -pedantic -Wall -Wextra -Werror (no link)
#   bad-input      empty, garbage, truncated and hand-made bad requests give an
#                  error (in the response or on stderr), never a crash
#   large          a file with more than 65535 source locations and long names
#   mutations      300 seeded random mutations of a real request: each gets an
#                  answer or exit status 1, never a crash or a hang
#   memcheck       the plugin under valgrind on good and bad requests: no
#                  leaks, no invalid accesses (skipped without valgrind)
#
# Environment (set by tests/codegen/CMakeLists.txt):
#   PLUGIN NANOPB_GENERATOR NANOPB_PLUGIN PROTOC PROTO_DIR PROTOBUF_INCLUDE
#   EXPECTED_DIR REQUEST_DIR H2RPC_INCLUDE NANOPB_INCLUDE
set -euo pipefail

mode=$1
work=$2
arg=${3:-}

# The test protos, named as protoc names them (relative to PROTO_DIR).
PROTOS=(
  nopkg.proto
  common/types.proto
  shop/shop.proto
  names/keywords.proto
  names/base.proto
  names/derived.proto
  h2rpc/clash.proto
  params/params.proto
  opt/optional.proto
  empty/nothing.proto
  wkt/wkt.proto
)
# Standard protos the test protos import; nanopb code is generated for them.
STD_PROTOS=(google/protobuf/empty.proto)
# nanopb_generator.py runs grpc_tools' bundled protoc (3.5 on Debian 12),
# which rejects proto3 "optional"; these go through protoc's plugin
# interface to nanopb instead (same output).
NANOPB_VIA_PLUGIN=" opt/optional.proto "

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# Runs protoc with the plugin: protoc_h2rpc OUTDIR PROTO...
protoc_h2rpc() {
  local out=$1
  shift
  "$PROTOC" -I"$PROTO_DIR" -I"$PROTOBUF_INCLUDE" \
    --plugin=protoc-gen-h2rpc="$PLUGIN" --h2rpc_out="$out" "$@"
}

# Generates nanopb and h2rpc code for every proto into $1, one protoc run
# per proto (as h2rpc_generate() does).
generate() {
  local out=$1
  rm -rf "$out"
  mkdir -p "$out"
  local p
  for p in "${STD_PROTOS[@]}"; do
    "$NANOPB_GENERATOR" -q -I"$PROTOBUF_INCLUDE" -D "$out" \
      "$PROTOBUF_INCLUDE/$p" || fail "nanopb on $p"
  done
  for p in "${PROTOS[@]}"; do
    if [[ $NANOPB_VIA_PLUGIN == *" $p "* ]]; then
      "$PROTOC" -I"$PROTO_DIR" -I"$PROTOBUF_INCLUDE" \
        --plugin=protoc-gen-nanopb="$NANOPB_PLUGIN" \
        --nanopb_out=-q:"$out" "$p" || fail "nanopb (plugin) on $p"
    else
      "$NANOPB_GENERATOR" -q -I"$PROTO_DIR" -I"$PROTOBUF_INCLUDE" \
        -D "$out" "$PROTO_DIR/$p" || fail "nanopb on $p"
    fi
    protoc_h2rpc "$out" "$p" || fail "protoc-gen-h2rpc on $p"
  done
}

stem() { echo "${1%.proto}"; }

# Checks FILE against the expectations in EXPECTED: each line is a fixed
# string that must occur in FILE; "! text" must not occur; blank lines and
# lines starting with "#" are ignored. Runs of blanks and newlines count as
# one space on both sides, so a declaration matches however it is wrapped.
check_expected() {
  local file=$1 expected=$2 line want flat bad=0
  flat=$(tr -s ' \t\n' '   ' <"$file")
  while IFS= read -r line || [[ -n $line ]]; do
    [[ -z $line || $line == \#* ]] && continue
    if [[ $line == '! '* ]]; then
      want=$(printf '%s' "${line#! }" | tr -s ' \t' '  ')
      if grep -qF -- "$want" <<<"$flat"; then
        echo "  unexpected in $file: $want" >&2
        bad=1
      fi
    else
      want=$(printf '%s' "$line" | tr -s ' \t' '  ')
      if ! grep -qF -- "$want" <<<"$flat"; then
        echo "  missing from $file: $want" >&2
        bad=1
      fi
    fi
  done <"$expected"
  return $bad
}

# Decodes a CodeGeneratorResponse (stdin) to text format (stdout).
decode_response() {
  "$PROTOC" -I"$PROTOBUF_INCLUDE" \
    --decode=google.protobuf.compiler.CodeGeneratorResponse \
    google/protobuf/compiler/plugin.proto
}

# Encodes the text-format CodeGeneratorRequest in $1 into $2.
encode_request() {
  "$PROTOC" -I"$PROTOBUF_INCLUDE" \
    --encode=google.protobuf.compiler.CodeGeneratorRequest \
    google/protobuf/compiler/plugin.proto <"$1" >"$2"
}

# Captures the request protoc sends for PROTO... into FILE: capture FILE PROTO...
# The capturing plugin passes the request on to the real one, whose answer
# (FEATURE_PROTO3_OPTIONAL) protoc needs.
capture() {
  local file=$1
  shift
  mkdir -p "$work/capture-out"
  printf '#!/bin/sh\ntee "%s" | "%s"\n' "$file" "$PLUGIN" >"$work/capture.sh"
  chmod +x "$work/capture.sh"
  "$PROTOC" -I"$PROTO_DIR" -I"$PROTOBUF_INCLUDE" \
    --plugin=protoc-gen-capture="$work/capture.sh" \
    --capture_out="$work/capture-out" "$@"
}

# Runs the plugin on a request file; sets rc, leaves stdout/stderr in files.
run_plugin() {
  rc=0
  "$PLUGIN" <"$1" >"$work/resp.bin" 2>"$work/stderr.txt" || rc=$?
  if ((rc >= 128)); then
    fail "plugin died with signal $((rc - 128)) on $1"
  fi
}

# Expects the plugin to answer request $1 with exit 0 and an error in the
# response containing each of the remaining arguments.
expect_response_error() {
  local req=$1 want
  shift
  run_plugin "$req"
  ((rc == 0)) || fail "exit status $rc on $req (want 0 with an error)"
  decode_response <"$work/resp.bin" >"$work/resp.txt"
  grep -q '^error: ' "$work/resp.txt" ||
    fail "response to $req has no error: $(cat "$work/resp.txt")"
  for want in "$@"; do
    grep -qF -- "$want" "$work/resp.txt" ||
      fail "error for $req lacks \"$want\": $(cat "$work/resp.txt")"
  done
  if grep -q '^file {' "$work/resp.txt"; then
    fail "response to $req has files despite the error"
  fi
}

# Expects exit status 1 and a message on stderr containing $2.
expect_stderr_error() {
  run_plugin "$1"
  ((rc == 1)) || fail "exit status $rc on $1 (want 1)"
  grep -qF -- "$2" "$work/stderr.txt" ||
    fail "stderr for $1 lacks \"$2\": $(cat "$work/stderr.txt")"
}

mkdir -p "$work"
case $mode in
patterns)
  generate "$work/out"
  bad=0
  for p in "${PROTOS[@]}"; do
    s=$(stem "$p")
    for ext in h2rpc.h h2rpc.c; do
      f="$work/out/$s.$ext"
      [[ -s $f ]] || {
        echo "  missing output $s.$ext" >&2
        bad=1
        continue
      }
      e="$EXPECTED_DIR/$s.$ext.expected"
      if [[ -f $e ]]; then
        check_expected "$f" "$e" || bad=1
      fi
    done
  done
  ((bad == 0)) || fail "generated code does not match the expectations"
  echo "patterns: ${#PROTOS[@]} protos match"
  ;;

deterministic)
  generate "$work/run1"
  # A second run from another directory, with a relative plugin path
  # resolved differently, must not change a byte.
  (cd / && generate "$work/run2")
  diff -r "$work/run1" "$work/run2" || fail "two runs differ"
  # All protos in one request: each file's names depend only on the file and
  # its imports, so the output matches the per-file runs.
  rm -rf "$work/all"
  mkdir -p "$work/all"
  protoc_h2rpc "$work/all" "${PROTOS[@]}" || fail "protoc on all protos"
  for p in "${PROTOS[@]}"; do
    s=$(stem "$p")
    for ext in h2rpc.h h2rpc.c; do
      cmp "$work/run1/$s.$ext" "$work/all/$s.$ext" ||
        fail "$s.$ext differs between a per-file and an all-files run"
    done
  done
  if grep -rlE '[0-9]{2}:[0-9]{2}:[0-9]{2}|/tmp/|'"$work" \
    --include='*.h2rpc.*' "$work/run1"; then
    fail "output holds a timestamp or a local path"
  fi
  echo "deterministic: identical across runs"
  ;;

compile)
  cc=$arg
  generate "$work/out"
  flags=(-std=c11 -pedantic -Wall -Wextra -Werror -Wshadow
    -Wstrict-prototypes -Wmissing-prototypes -DPB_ENABLE_MALLOC=1
    -I"$work/out" -I"$NANOPB_INCLUDE" -I"$H2RPC_INCLUDE")
  n=0
  for p in "${PROTOS[@]}"; do
    s=$(stem "$p")
    # The header alone (twice, to exercise its guard), then the source.
    tu="$work/alone_$(echo "$s" | tr / _).c"
    printf '#include "%s.h2rpc.h"\n#include "%s.h2rpc.h"\n' "$s" "$s" >"$tu"
    "$cc" "${flags[@]}" -fsyntax-only "$tu" || fail "$cc: $s.h2rpc.h alone"
    "$cc" "${flags[@]}" -c "$work/out/$s.h2rpc.c" -o "$work/out/$s.h2rpc.o" ||
      fail "$cc: $s.h2rpc.c"
    n=$((n + 1))
  done
  # Every generated header in one translation unit: no two clash.
  all="$work/all_headers.c"
  : >"$all"
  for p in "${PROTOS[@]}"; do
    printf '#include "%s.h2rpc.h"\n' "$(stem "$p")" >>"$all"
  done
  "$cc" "${flags[@]}" -fsyntax-only "$all" || fail "$cc: all headers together"
  echo "compile: $n headers and sources compile with $cc"
  ;;

bad-input)
  : >"$work/empty.bin"
  expect_response_error "$work/empty.bin" "no file to generate"
  head -c 4096 /dev/urandom >"$work/garbage.bin"
  # Random bytes almost never parse; if they happen to, any clean answer is
  # fine, so only a crash fails here.
  run_plugin "$work/garbage.bin"
  printf '\377\377\377\377\377\377\377\377\377\377\377' >"$work/varint.bin"
  expect_stderr_error "$work/varint.bin" "cannot parse"
  capture "$work/good.bin" shop/shop.proto
  size=$(wc -c <"$work/good.bin")
  head -c $((size / 2)) "$work/good.bin" >"$work/half.bin"
  expect_stderr_error "$work/half.bin" "cannot parse"
  # Hand-made requests, each naming what its error must say in
  # "# expect: text" lines (text format escapes quotes, so none there).
  for t in "$REQUEST_DIR"/*.txt; do
    mapfile -t wants < <(sed -n 's/^# expect: //p' "$t")
    ((${#wants[@]} > 0)) || fail "$t has no '# expect:' line"
    encode_request "$t" "$work/req.bin" || fail "cannot encode $t"
    expect_response_error "$work/req.bin" "${wants[@]}"
  done
  # Through protoc: an option the plugin does not take fails the run.
  if protoc_h2rpc "opt:$work" nopkg.proto 2>"$work/protoc.txt"; then
    fail "protoc accepted an unknown plugin option"
  fi
  grep -qF "takes no options" "$work/protoc.txt" ||
    fail "protoc did not relay the plugin's error: $(cat "$work/protoc.txt")"
  "$PLUGIN" --version | grep -q '^protoc-gen-h2rpc ' || fail "--version"
  echo "bad-input: every bad request got an error"
  ;;

large)
  # 20000 fields give over 65535 source locations (a repeated FT_POINTER
  # field of Debian's nanopb holds at most 65535), and a long service name.
  # Four messages of 5000 fields keep clear of the reserved numbers 19000+.
  mkdir -p "$work/protos/big"
  long=$(printf 'S%.0s' {1..3000})
  {
    echo 'syntax = "proto3";'
    echo 'package big;'
    for m in 1 2 3 4; do
      echo "message Wide$m {"
      for i in $(seq 1 5000); do echo "  int32 f$i = $i;"; done
      echo '}'
    done
    echo '// The last comment of the file.'
    echo "service $long {"
    echo '  // Kept although it comes after 65535 locations.'
    echo '  rpc Get(Wide1) returns (Wide4);'
    echo '}'
  } >"$work/protos/big/big.proto"
  rm -rf "$work/out"
  mkdir -p "$work/out"
  "$PROTOC" -I"$work/protos" --plugin=protoc-gen-h2rpc="$PLUGIN" \
    --h2rpc_out="$work/out" big/big.proto || fail "protoc on big.proto"
  h="$work/out/big/big.h2rpc.h"
  grep -qF "Kept although it comes after 65535 locations." "$h" ||
    fail "the method comment after 65535 locations was lost"
  grep -qF "big_${long}_Get(h2rpc_channel" "$h" || fail "long name"
  echo "large: ok"
  ;;

mutations)
  capture "$work/base.bin" "${PROTOS[@]}"
  PLUGIN="$PLUGIN" BASE="$work/base.bin" OUT="$work" /usr/bin/python3 - <<'PY'
import os, random, subprocess, sys
base = open(os.environ["BASE"], "rb").read()
rng = random.Random(20240601)  # fixed seed: the same inputs every run
counts = {}
for i in range(300):
    b = bytearray(base)
    for _ in range(rng.randint(1, 8)):
        pos = rng.randrange(len(b))
        op = rng.randrange(4)
        if op == 0:
            b[pos] ^= 1 << rng.randrange(8)
        elif op == 1:
            b[pos] = rng.randrange(256)
        elif op == 2:
            del b[pos:pos + rng.randint(1, 20)]
        else:
            b[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 5)))
    try:
        r = subprocess.run([os.environ["PLUGIN"]], input=bytes(b),
                           capture_output=True, timeout=20)
    except subprocess.TimeoutExpired:
        r = None
    code = "hang" if r is None else r.returncode
    counts[code] = counts.get(code, 0) + 1
    if code not in (0, 1):
        path = os.path.join(os.environ["OUT"], "mutation%d.bin" % i)
        open(path, "wb").write(b)
        err = b"" if r is None else r.stderr[-2000:]
        sys.stderr.write("FAIL: mutation %d -> %s (input kept in %s)\n%s\n"
                         % (i, code, path, err.decode("utf-8", "replace")))
        sys.exit(1)
print("mutations: 300 inputs, exit statuses %s" % sorted(counts.items()))
PY
  ;;

memcheck)
  if ! command -v valgrind >/dev/null; then
    echo "memcheck: valgrind not found, skipped"
    exit 77
  fi
  capture "$work/all.bin" "${PROTOS[@]}"
  : >"$work/empty.bin"
  printf '\377\377\377\377\377\377\377\377\377\377\377' >"$work/varint.bin"
  size=$(wc -c <"$work/all.bin")
  head -c $((size / 2)) "$work/all.bin" >"$work/half.bin"
  reqs=("$work/all.bin" "$work/empty.bin" "$work/varint.bin" "$work/half.bin")
  i=0
  for t in "$REQUEST_DIR"/*.txt; do
    encode_request "$t" "$work/bad$i.bin"
    reqs+=("$work/bad$i.bin")
    i=$((i + 1))
  done
  for r in "${reqs[@]}"; do
    rc=0
    valgrind -q --leak-check=full --show-leak-kinds=all \
      --errors-for-leak-kinds=all --error-exitcode=99 \
      "$PLUGIN" <"$r" >/dev/null 2>"$work/vg.txt" || rc=$?
    if ((rc == 99)) || grep -q '==[0-9]*==' "$work/vg.txt"; then
      cat "$work/vg.txt" >&2
      fail "valgrind reports errors on $r"
    fi
    ((rc <= 1)) || fail "exit status $rc under valgrind on $r"
  done
  echo "memcheck: ${#reqs[@]} requests clean"
  ;;

*)
  echo "usage: $0 MODE WORKDIR [ARG] (see the top of this file)" >&2
  exit 2
  ;;
esac
