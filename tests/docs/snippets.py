#!/usr/bin/python3
"""Every C snippet in README.md and docs/*.md compiles against h2rpc's
public headers and the generated stubs of the examples.

Usage: snippets.py <source dir> <build dir> <cc>

A ```c block is compiled as it stands when it has a main() or is marked
<!-- snippet: file -->. Otherwise it is a fragment: its function definitions
(a line at column 0 that starts one, through the `}` at column 0 that ends
it) stay at file scope and the other lines become the body of a function.
The prelude includes the h2rpc headers and the examples' generated stubs and
declares the names fragments use without declaring them (srv, ch, ctx, ...).
A block marked <!-- snippet: internal HEADER[; DECLARATION; ...] --> also
includes rpc/HEADER (h2rpc's own modules, as its unit tests use them) and
declares what follows it. A block marked
<!-- snippet: skip REASON --> (a signature sketch, not
code) is not compiled; the reason is printed. Each failure names the file
and line of the block and shows the compiler's message.
"""
import glob
import os
import re
import subprocess
import sys
import tempfile

SRC, BUILD, CC = sys.argv[1], sys.argv[2], sys.argv[3]

PRELUDE = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "h2rpc/h2rpc.h"
#include "helloworld/helloworld.h2rpc.h"
#include "routeguide/route_guide.h2rpc.h"
#include "chain/v1/chain.h2rpc.h"
#include "shop/v1/shop.h2rpc.h"
#include "h2rpc/chaos/v1/fault.h2rpc.h"
/* Names the fragments use as if the surrounding program declared them. */
static h2rpc_server *srv;
static h2rpc_channel *ch, *next;
static h2rpc_ctx *ctx, *parent;
static h2rpc_call_info info;
static h2rpc_status err;
static int port;
static int64_t deadline_ns;
static void *user_data;
static size_t n;
static routeguide_Point route[4];
static routeguide_RouteNote first_note, next_note;
static h2rpc_channel_options opts;
static h2rpc_fault_injector *faults;
static const char *text;
static size_t text_len;
static shop_v1_PriceRequest req;
static shop_v1_Price price;
static uint64_t seed;
static void on_writable(h2rpc_stream *s, void *user_data) {
  (void)s;
  (void)user_data;
}
static void log_transition(const char *endpoint, h2rpc_breaker_state from,
                           h2rpc_breaker_state to, void *user_data) {
  (void)endpoint, (void)from, (void)to, (void)user_data;
}
static void show_without_price(void) {}
"""


def include_dirs():
    dirs = [os.path.join(SRC, "rpc/include"), os.path.join(BUILD, "rpc/include"),
            os.path.join(SRC, "rpc"),
            "/usr/include/nanopb"]
    for h in glob.glob(os.path.join(BUILD, "**/*.h2rpc.h"), recursive=True):
        if "CMakeFiles" in h:
            continue
        # the folder the package path starts in: .../h2rpc_gen/<pkg>/x.h
        rel = re.search(r"(.*?/(?:h2rpc_gen|idl))/", h)
        if rel:
            dirs.append(rel.group(1))
    for h in glob.glob(os.path.join(BUILD, "**/pb.h"), recursive=True):
        dirs.append(os.path.dirname(h))
    seen = []
    for d in dirs:
        if d not in seen:
            seen.append(d)
    return ["-I" + d for d in seen]


def blocks(path):
    """Yields (line number, mark, code) for each ```c block."""
    lines = open(path).read().split("\n")
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```c":
            mark = ""
            j = i - 1
            while j >= 0 and lines[j].strip() == "":
                j -= 1
            m = re.match(r"<!--\s*snippet:\s*(.*?)\s*-->", lines[j].strip()) \
                if j >= 0 else None
            if m:
                mark = m.group(1)
            start = i + 1
            i += 1
            while i < len(lines) and lines[i].strip() != "```":
                i += 1
            yield start, mark, "\n".join(lines[start:i])
        i += 1


def as_unit(code):
    """A fragment as a translation unit: its definitions (a column-0 line
    starting with static, typedef, struct or enum, through the column-0 `}`
    that ends it; or one such line ending in `;`) at file scope, the other
    lines in a function body."""
    outside, body = [], []
    lines = code.split("\n")
    k = 0
    while k < len(lines):
        line = lines[k]
        if line.startswith("#"):
            outside.append(line)
        elif re.match(r"(static|typedef|struct|enum|extern)\b", line):
            if line.rstrip().endswith(";"):
                outside.append(line)
            else:
                while k < len(lines):
                    outside.append(lines[k])
                    if lines[k].startswith("}"):
                        break
                    k += 1
        else:
            body.append(line)
        k += 1
    return ("\n".join(outside) + "\nvoid snippet_body(void);\n"
            "void snippet_body(void) {\n" + "\n".join(body) + "\n}\n")


def main():
    flags = ["-std=c11", "-D_POSIX_C_SOURCE=200809L", "-fsyntax-only",
             "-Wall", "-Wno-unused", "-Wno-unused-parameter",
             "-Wno-unused-but-set-variable", "-Werror=implicit-function-declaration",
             "-Wno-missing-field-initializers", "-Wno-return-type"] + include_dirs()
    files = [os.path.join(SRC, "README.md")] + sorted(
        glob.glob(os.path.join(SRC, "docs/*.md")))
    failed = compiled = skipped = 0
    with tempfile.TemporaryDirectory() as tmp:
        for path in files:
            rel = os.path.relpath(path, SRC)
            for line, mark, code in blocks(path):
                where = f"{rel}:{line}"
                if mark.startswith("skip"):
                    skipped += 1
                    print(f"skip {where}: {mark[4:].strip() or 'no reason'}")
                    continue
                whole = mark == "file" or re.search(r"\bint main\(", code)
                prelude = PRELUDE
                if mark.startswith("internal "):
                    # h2rpc's own modules (rpc/<header>), as its tests use them
                    header, _, decls = mark[9:].partition(";")
                    prelude = (f'#include "{header.strip()}"\n' + PRELUDE +
                               decls.replace(";", ";\n"))
                unit = (code if whole and "#include" in code
                        else prelude + (code if whole else as_unit(code)))
                src = os.path.join(tmp, "snippet.c")
                with open(src, "w") as f:
                    f.write(unit)
                r = subprocess.run([CC, *flags, src], capture_output=True,
                                   text=True, timeout=60)
                compiled += 1
                if r.returncode != 0:
                    failed += 1
                    print(f"FAIL {where}: does not compile\n{r.stderr}")
                else:
                    print(f"ok   {where}")
    print(f"{compiled} compiled, {failed} failed, {skipped} skipped")
    sys.exit(1 if failed else 0)


main()
