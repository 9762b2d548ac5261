#!/usr/bin/python3
"""Writes docs/api.md, the API reference, from the public headers'
comments (rpc/include/h2rpc/*.h): per header, its opening comment, an index
of its functions with the first sentence of each one's comment, and the
declarations with their comments as the header has them.

Usage: gen-api-doc.py [--check] [source dir]
  --check  exit 1 (and say so) when docs/api.md is not what this would write
"""
import glob
import os
import re
import sys

args = [a for a in sys.argv[1:] if a != "--check"]
CHECK = "--check" in sys.argv[1:]
SRC = args[0] if args else os.path.join(os.path.dirname(__file__), "..")
OUT = os.path.join(SRC, "docs/api.md")

ORDER = ["h2rpc.h", "status.h", "ctx.h", "metadata.h", "method.h", "pb.h",
         "channel.h", "stream.h", "server.h", "interceptor.h",
         "resilience.h", "config.h", "discovery.h", "export.h"]


def comment_text(block):
    """The text of a /* ... */ comment, without its stars."""
    lines = []
    for line in block.split("\n"):
        line = line.strip()
        line = re.sub(r"^/\*+\s?", "", line)
        line = re.sub(r"\s?\*+/$", "", line)
        line = re.sub(r"^\*\s?", "", line)
        lines.append(line)
    return "\n".join(lines).strip()


def first_sentence(text):
    text = " ".join(text.split())
    for abbr in ("e.g.", "i.e.", "etc."):
        text = text.replace(abbr, abbr.replace(".", "\0"))
    m = re.match(r"(.+?[.:;])(\s|$)", text)
    s = m.group(1) if m else text
    return s.replace("\0", ".").replace("|", "\\|")


def header_doc(path):
    src = open(path).read()
    name = os.path.basename(path)
    top = re.match(r"\s*(/\*.*?\*/)", src, re.S)
    intro = comment_text(top.group(1)) if top else ""
    body = src[top.end():] if top else src
    # Drop the include guard, includes and the C++ wrappers.
    kept = []
    for line in body.split("\n"):
        if re.match(r"#(ifndef|define|endif)\s+H2RPC_\w+_H\b", line) or \
           re.match(r"#endif /\* H2RPC_\w+_H \*/", line) or \
           line.startswith("#include") or \
           line in ('#ifdef __cplusplus', 'extern "C" {', '}', '#endif'):
            continue
        kept.append(line)
    code = re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip("\n")
    # Index: each exported function with the comment right above it.
    index = []
    for m in re.finditer(r"(/\*(?:(?!\*/).)*\*/)[ \t]*\n\s*"
                         r"H2RPC_EXTERN[^;]*?\b(h2rpc_\w+)\s*\(",
                         body, re.S):
        index.append((m.group(2), first_sentence(comment_text(m.group(1)))))
    # Without a comment of its own: an _init function sets up the type its
    # argument points to (documented with that type); another shares the
    # comment of the declaration above it.
    for m in re.finditer(r"H2RPC_EXTERN[^;(]*?\b(h2rpc_\w+)\s*\(([^;]*)",
                         body):
        if m.group(1) not in (n for n, _ in index):
            arg = re.match(r"\s*(?:const\s+)?(h2rpc_\w+)", m.group(2))
            if m.group(1).endswith("_init") and arg:
                index.append((m.group(1), f"Sets up a `{arg.group(1)}` with "
                              "its defaults (see the type's comment)."))
            elif m.group(1).endswith("_reset") and arg:
                index.append((m.group(1), f"Releases what a `{arg.group(1)}` "
                              "holds (see the type's comment)."))
            else:
                index.append((m.group(1), None))
    index.sort(key=lambda e: body.index(e[0] + "("))
    for i, (n, summary) in enumerate(index):
        if summary is None:
            index[i] = (n, index[i - 1][1] if i > 0 else "")
    out = [f"## h2rpc/{name}", "", intro, ""]
    if index:
        out += ["| function | what it does |", "|---|---|"]
        out += [f"| `{n}()` | {s} |" for n, s in index]
        out.append("")
    out += ["```h", code, "```", ""]
    return "\n".join(out)


def main():
    headers = sorted(glob.glob(os.path.join(SRC, "rpc/include/h2rpc/*.h")),
                     key=lambda p: (ORDER.index(os.path.basename(p))
                                    if os.path.basename(p) in ORDER else 99, p))
    parts = [
        "# API reference",
        "",
        "Generated from the comments of the public headers in "
        "`rpc/include/h2rpc/` by `scripts/gen-api-doc.py`; do not edit it by "
        "hand (the `docs_api_reference` test fails when it is out of date). "
        "`#include <h2rpc/h2rpc.h>` brings in every header. Each function's "
        "comment states who owns what it takes and returns, and from which "
        "threads it may be called. Generated stubs are described in "
        "[codegen.md](codegen.md).",
        "",
    ]
    parts += [f"- [h2rpc/{os.path.basename(h)}](#h2rpc{os.path.basename(h).replace('.', '')})"
              for h in headers]
    parts.append("")
    parts += [header_doc(h) for h in headers]
    text = "\n".join(parts).rstrip("\n") + "\n"
    if CHECK:
        old = open(OUT).read() if os.path.exists(OUT) else ""
        if old != text:
            print("docs/api.md is out of date: run scripts/gen-api-doc.py")
            sys.exit(1)
        print("docs/api.md is up to date")
        return
    with open(OUT, "w") as f:
        f.write(text)


main()
