#!/usr/bin/python3
"""Summaries for scripts/bench.sh.

  bench_summary.py OUTDIR DURATION ROUNDS     Markdown summary of a run
  bench_summary.py --update DOC SUMMARY       replaces the text between
                                              <!-- bench:begin --> and
                                              <!-- bench:end --> in DOC
"""
import json
import os
import statistics
import sys

SCENARIOS = {
    "S1": "unary latency, concurrency 1, empty",
    "S2": "unary throughput, concurrency 64 over 4 connections, empty",
    "S3": "unary, 1 KiB request and response, concurrency 64",
    "S4": "streaming ping-pong, 64 streams over 4 connections (round trips/s)",
    "S5": "256 KiB responses, concurrency 8, 1 connection",
}


def load(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def med(vals):
    return statistics.median(vals) if vals else None


def span(vals, fmt):
    if not vals:
        return "–"
    return f"{fmt(med(vals))} ({fmt(min(vals))}–{fmt(max(vals))})"


def num(v):
    return f"{v:,.0f}"


def us(v):
    return f"{v:.1f} µs"


def ratio(a, b):
    """a / b, or a dash when either is missing."""
    if a is None or b is None or a == 0 or b == 0:
        return "–"
    return f"{a / b:.2f}×"


def summary(out, duration, rounds):
    runs = load(os.path.join(out, "runs.jsonl"))
    h2 = load(os.path.join(out, "h2load.jsonl"))
    fp = load(os.path.join(out, "footprint.jsonl"))
    have_ref = any(r["server"] == "grpc" for r in runs)
    lines = [f"Run of scripts/bench.sh: {rounds} alternating rounds, {duration} s "
             "measured per run, server on CPU 0, client on CPU 1. Medians, "
             "min–max in brackets."]
    if not have_ref:
        lines.append("")
        lines.append("**No gRPC reference was available: h2rpc measured alone.**")

    def pick(server, client, sc, key):
        return [r["r"][key] for r in runs if r["server"] == server and
                r["client"] == client and r["scenario"] == sc and key in r["r"]]

    lines += ["", "| scenario | pairing (server ← client) | qps | p50 | p99 |",
              "| --- | --- | --- | --- | --- |"]
    for sc, what in SCENARIOS.items():
        for server in ("h2rpc", "grpc"):
            for client in ("h2rpc", "grpc"):
                q = pick(server, client, sc, "qps")
                if not q:
                    continue
                lines.append(
                    f"| {sc}: {what} | {server} ← {client} | {span(q, num)} | "
                    f"{span(pick(server, client, sc, 'p50_us'), us)} | "
                    f"{span(pick(server, client, sc, 'p99_us'), us)} |")

    def cps(server, client, sc):
        vals = []
        for r in runs:
            if (r["server"], r["client"], r["scenario"]) != (server, client, sc):
                continue
            cpu = r["r"].get("client_cpu_s", 0)
            rpcs = r["r"].get("rpcs", 0)
            if cpu and cpu > 0:
                vals.append(rpcs / cpu)
        return vals

    lines += ["", "| measure | h2rpc | gRPC C++ | ratio | target |",
              "| --- | --- | --- | --- | --- |"]
    h2h = [r["h2load_rps"] for r in h2 if r["server"] == "h2rpc"]
    h2g = [r["h2load_rps"] for r in h2 if r["server"] == "grpc"]
    lines.append(f"| S2 server req/s under h2load (1 conn × 64 streams) | "
                 f"{span(h2h, num)} | {span(h2g, num)} | {ratio(med(h2h), med(h2g))} | ≥ 2× |")
    s2h, s2g = pick("h2rpc", "h2rpc", "S2", "qps"), pick("grpc", "grpc", "S2", "qps")
    lines.append(f"| S2 qps, each stack's own client | {span(s2h, num)} | "
                 f"{span(s2g, num)} | {ratio(med(s2h), med(s2g))} | ≥ 2× |")
    p50h, p50g = pick("h2rpc", "h2rpc", "S1", "p50_us"), pick("grpc", "grpc", "S1", "p50_us")
    lines.append(f"| S1 p50 latency | {span(p50h, us)} | {span(p50g, us)} | "
                 f"{ratio(med(p50h), med(p50g))} (of gRPC's) | ≤ 0.6× |")
    s4h, s4g = pick("h2rpc", "h2rpc", "S4", "qps"), pick("grpc", "grpc", "S4", "qps")
    lines.append(f"| S4 ping-pong round trips/s, each stack's own client | "
                 f"{span(s4h, num)} | {span(s4g, num)} | {ratio(med(s4h), med(s4g))} | ≥ 2× |")
    s5h = [q * 262144 / 1e6 for q in pick("h2rpc", "h2rpc", "S5", "qps")]
    s5g = [q * 262144 / 1e6 for q in pick("grpc", "grpc", "S5", "qps")]
    lines.append(f"| S5 MB/s, 256 KiB responses | {span(s5h, num)} | {span(s5g, num)} | "
                 f"{ratio(med(s5h), med(s5g))} | ≥ 1.5× |")
    ch, cg = cps("grpc", "h2rpc", "S2"), cps("grpc", "grpc", "S2")
    lines.append(f"| client calls per CPU-second, against the gRPC server (S2) | "
                 f"{span(ch, num)} | {span(cg, num)} | {ratio(med(ch), med(cg))} | ≥ 2× |")
    fph = [f for f in fp if f["server"] == "h2rpc"]
    fpg = [f for f in fp if f["server"] == "grpc"]
    if fph:
        h = fph[0]
        hb = h["stripped_bytes"] + h["lib_bytes"]
        gtext, gratio = "–", "–"
        if fpg:
            g = fpg[0]
            gb = g["stripped_bytes"] + g["lib_bytes"]
            gtext = f"{gb / 1e6:.1f} MB ({g['libs']} libraries)"
            gratio = ratio(gb, hb) + " smaller"
        lines.append(
            f"| loaded code: stripped server + shared libraries | "
            f"{hb / 1e6:.1f} MB ({h['libs']} libraries) | {gtext} | {gratio} "
            f"| ≥ 10× smaller |")
    return "\n".join(lines) + "\n"


def update(doc, summary_path):
    with open(summary_path) as f:
        body = f.read()
    with open(doc) as f:
        text = f.read()
    begin, end = "<!-- bench:begin -->", "<!-- bench:end -->"
    if begin not in text or end not in text:
        return
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    with open(doc, "w") as f:
        f.write(head + begin + "\n" + body + end + tail)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--update":
        update(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 4:
        sys.stdout.write(summary(sys.argv[1], sys.argv[2], sys.argv[3]))
    else:
        sys.stderr.write(__doc__)
        sys.exit(2)
