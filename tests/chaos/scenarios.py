#!/usr/bin/python3
"""Chaos scenarios: three pricing replicas, one client with retries and a
circuit breaker per endpoint, a fault injected on a schedule, and a timeline
that must look the way docs/resilience.md says it does.

Usage: scenarios.py <scenario> <build dir> <out dir> [--plot]
(H2RPC_CHAOS_PLOT=1 in the environment also plots.)

Scenarios (each runs real processes on 127.0.0.1 and takes under 12 s):
  one_fails  one replica fails every call for 3 s, then recovers
  all_fail   every replica fails every call
  slow       one replica answers in 300 ms (slow-call threshold 150 ms)
  blackhole  the network path to one replica drops every byte (chaos proxy)
  adaptive   every replica fails for 2 s under the adaptive throttle (SRE
             book: requests vs accepts), then recovers

The client is examples/microservices/chaos_load; faults come from
`h2rpc fault set` (the replicas' fault injector) and from
h2rpc-chaos-proxy's control port. Writes <out>/<scenario>.csv (the client's
timeline), <out>/<scenario>.events (breaker transitions and the faults, on
the same CLOCK_MONOTONIC ms), and with --plot <out>/<scenario>.png.
Only processes started here are stopped, by PID.
"""
import os
import signal
import socket
import subprocess
import sys
import time

SCENARIO, BUILD, OUT = sys.argv[1], sys.argv[2], sys.argv[3]
PLOT = "--plot" in sys.argv[4:] or os.environ.get("H2RPC_CHAOS_PLOT") == "1"
BACKEND = os.path.join(BUILD, "examples/microservices/backend")
LOAD = os.path.join(BUILD, "examples/microservices/chaos_load")
CLI = os.path.join(BUILD, "registry/h2rpc")
PROXY = os.path.join(BUILD, "examples/chaos/h2rpc-chaos-proxy")
HERE = os.path.dirname(os.path.abspath(__file__))
procs = []
failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)
    return ok


def now_ms():
    return time.monotonic() * 1000.0  # CLOCK_MONOTONIC, as chaos_load's


def start(args, want):
    """Starts a process and reads its stdout until each word in `want` has
    printed "<WORD> <n>"; returns (process, {word: n})."""
    p = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    procs.append(p)
    found = {}
    deadline = time.monotonic() + 10
    while len(found) < len(want):
        if time.monotonic() > deadline:
            raise AssertionError(f"{args[0]} did not print {want}")
        line = p.stdout.readline()
        if not line:
            raise AssertionError(f"{args[0]} exited before printing {want}")
        word, _, rest = line.strip().partition(" ")
        if word in want:
            found[word] = int(rest)
    return p, found


def fault(port, *flags):
    subprocess.run([CLI, "fault", "set", f"--target=127.0.0.1:{port}",
                    "--method=/shop.v1.Pricing/", *flags],
                   check=True, timeout=10, stdout=subprocess.DEVNULL)


def fault_clear(port):
    subprocess.run([CLI, "fault", "clear", f"--target=127.0.0.1:{port}"],
                   check=True, timeout=10, stdout=subprocess.DEVNULL)


def proxy_command(control_port, line):
    with socket.create_connection(("127.0.0.1", control_port), timeout=5) as s:
        f = s.makefile("rw")
        f.write(line + "\n")
        f.flush()
        answer = f.readline().strip()
    if not answer.startswith("OK"):
        raise AssertionError(f"proxy refused {line!r}: {answer}")


# ------------------------------------------------------------- the timeline

class Timeline:
    """chaos_load's CSV and its BREAKER lines, plus the driver's marks."""

    def __init__(self, csv_path, stdout_lines, marks):
        self.rows = []
        with open(csv_path) as f:
            header = f.readline().strip().split(",")
            for line in f:
                r = dict(zip(header, line.strip().split(",")))
                for k in ("mono_ms", "calls", "ok", "failed", "p50_us",
                          "p99_us", "max_us"):
                    r[k] = int(r[k])
                r["t_s"] = float(r["t_s"])
                self.rows.append(r)
        self.events = []  # (mono_ms, endpoint, from, to)
        self.total = None
        for line in stdout_lines:
            w = line.split()
            if w and w[0] == "BREAKER":
                self.events.append((int(w[1]), w[2], w[3], w[4]))
            elif w and w[0] == "START":
                self.start_ms = int(w[1])
            elif w and w[0] == "TOTAL":
                self.total = {k: int(v) for k, v in
                              (x.split("=") for x in w[1:])}
        self.marks = marks  # [(mono_ms, text)]

    def first_event(self, endpoint, to, after_ms, before_ms=float("inf")):
        for t, ep, _, state in self.events:
            if ep == endpoint and state == to and after_ms <= t <= before_ms:
                return t
        return None

    def rows_of(self, endpoint, t0_ms, t1_ms):
        """The rows of endpoint whose whole 100 ms interval lies within
        [t0_ms, t1_ms] (a row is written at its interval's end)."""
        return [r for r in self.rows if r["endpoint"] == endpoint
                and t0_ms <= r["mono_ms"] - 100 and r["mono_ms"] <= t1_ms]

    def sum(self, endpoint, field, t0_ms, t1_ms):
        return sum(r[field] for r in self.rows_of(endpoint, t0_ms, t1_ms))

    def write_events(self, path):
        with open(path, "w") as f:
            for t, text in self.marks:
                f.write(f"{t} MARK {text}\n")
            for t, ep, a, b in self.events:
                f.write(f"{t} BREAKER {ep} {a} {b}\n")


def plot(tl, endpoints, names, title, png):
    """One PNG: calls answered per endpoint, breaker states, failures and
    latency, with the injected faults as dashed lines."""
    base = png[:-4]
    wide = base + ".dat"
    by_t = {}
    for r in tl.rows:
        by_t.setdefault(r["t_s"], {})[r["endpoint"]] = r
    state = {"CLOSED": 0, "HALF_OPEN": 1, "OPEN": 2, "GONE": -1, "-": 0}
    with open(wide, "w") as f:
        for t in sorted(by_t):
            row = by_t[t]
            cols = [f"{t:.3f}"]
            for ep in endpoints:
                r = row.get(ep)
                cols += [str(r["calls"] * 10 if r else 0),
                         str(state.get(r["breaker"], 0) if r else 0)]
            a = row.get("all")
            n = row.get("none")
            cols += [str(a["ok"] * 10 if a else 0),
                     str(a["failed"] * 10 if a else 0),
                     str(n["calls"] * 10 if n else 0),
                     f"{(a['p50_us'] if a else 0) / 1000:.3f}",
                     f"{(a['p99_us'] if a else 0) / 1000:.3f}"]
            f.write(" ".join(cols) + "\n")
    k = len(endpoints)
    marks = "".join(
        f"set arrow from {(t - tl.start_ms) / 1000:.3f}, graph 0 to "
        f"{(t - tl.start_ms) / 1000:.3f}, graph 1 nohead dt 2 lc rgb 'gray40'\n"
        f"set label '{text}' at {(t - tl.start_ms) / 1000:.3f}, graph 0.95 "
        f"offset 0.5,0 font ',8'\n" for t, text in tl.marks)
    calls = ", ".join(f"'{wide}' using 1:{2 + 2 * i} with lines lw 2 "
                      f"title '{names[i]}'" for i in range(k))
    # Offset a little per replica so equal states stay visible.
    states = ", ".join(f"'{wide}' using 1:(${3 + 2 * i} + {0.06 * i}) with "
                       f"steps lw 2 title '{names[i]}'" for i in range(k))
    ok_col = 2 + 2 * k
    script = f"""
set terminal pngcairo size 1100,900 font 'sans,10' noenhanced
set output '{png}'
set key outside right top
set grid
set lmargin 10
set rmargin 22
set multiplot layout 3,1 title '{title}'
{marks}
set title 'calls per second answered by each replica'
set ylabel 'calls/s'
set yrange [0:*]
plot {calls}
set title 'breaker state per replica'
set ylabel ''
set yrange [-0.3:2.5]
set ytics ('CLOSED' 0, 'HALF_OPEN' 1, 'OPEN' 2)
plot {states}
set title 'client: outcomes per second, and latency (right axis)'
set ytics auto
set yrange [0:*]
set ylabel 'calls/s'
set y2label 'ms'
set y2tics
set y2range [0:*]
set xlabel 'seconds'
plot '{wide}' using 1:{ok_col} with lines lw 2 title 'ok', \\
     '{wide}' using 1:{ok_col + 1} with lines lw 2 title 'failed', \\
     '{wide}' using 1:{ok_col + 2} with lines lw 1 title 'no replica', \\
     '{wide}' using 1:{ok_col + 4} axes x1y2 with lines dt 3 title 'p99 ms'
unset multiplot
"""
    r = subprocess.run(["gnuplot"], input=script, text=True,
                       capture_output=True, timeout=60)
    check(r.returncode == 0 and os.path.getsize(png) > 0,
          f"plot written to {png} {r.stderr.strip()}")


# ------------------------------------------------------------- scenarios

def run():
    os.makedirs(OUT, exist_ok=True)
    ports = []
    for i in range(1, 4):
        _, found = start([BACKEND, "--role=pricing", f"--id=pricing-{i}"],
                         ["PORT"])
        ports.append(found["PORT"])
    addrs = [f"127.0.0.1:{p}" for p in ports]
    control = None
    if SCENARIO == "blackhole":
        _, found = start([PROXY, f"--upstream={addrs[2]}", "--seed=7"],
                         ["PORT", "CONTROL"])
        control = found["CONTROL"]
        addrs[2] = f"127.0.0.1:{found['PORT']}"
    names = ["pricing-1", "pricing-2", "pricing-3"]

    settings = {
        "one_fails": dict(seconds=9, extra=["--max_open_ms=1000"]),
        "all_fail": dict(seconds=6, extra=["--attempts=3"]),
        "slow": dict(seconds=7, extra=["--slow_call_ms=150",
                                       "--deadline_ms=1000"]),
        "blackhole": dict(seconds=7, extra=["--deadline_ms=500",
                                            "--per_attempt_ms=150"]),
        "adaptive": dict(seconds=12, extra=["--mode=adaptive",
                                            "--attempts=1",
                                            "--window_ms=1000"]),
    }[SCENARIO]
    csv = os.path.join(OUT, SCENARIO + ".csv")
    load = subprocess.Popen(
        [LOAD, "--target=static:///" + ",".join(addrs), f"--csv={csv}",
         f"--seconds={settings['seconds']}", "--open_ms=1000", "--probes=3",
         "--consecutive=5", *settings["extra"]],
        stdout=subprocess.PIPE, text=True)
    procs.append(load)
    first = load.stdout.readline().split()
    if not first or first[0] != "START":
        raise AssertionError("chaos_load did not start")
    t0 = int(first[1])
    marks = []

    def at(seconds, text, action):
        """Runs action when the load has run `seconds` (the timeline records
        when it happened; the checks use the recorded time)."""
        delay = t0 + seconds * 1000 - now_ms()
        if delay > 0:
            time.sleep(delay / 1000)
        action()
        marks.append((int(now_ms()), text))

    if SCENARIO == "one_fails":
        at(2, "pricing-1 fails", lambda: fault(
            ports[0], "--error_rate=1", "--code=UNAVAILABLE"))
        at(5, "pricing-1 recovers", lambda: fault_clear(ports[0]))
    elif SCENARIO == "all_fail":
        at(1.5, "all fail", lambda: [fault(p, "--error_rate=1",
                                           "--code=UNAVAILABLE")
                                     for p in ports])
    elif SCENARIO == "slow":
        at(1.5, "pricing-2 slow", lambda: fault(
            ports[1], "--delay_rate=1", "--delay_ms=300"))
    elif SCENARIO == "adaptive":
        at(1.5, "all fail", lambda: [fault(p, "--error_rate=1",
                                           "--code=UNAVAILABLE")
                                     for p in ports])
        at(3.5, "all recover", lambda: [fault_clear(p) for p in ports])
    elif SCENARIO == "blackhole":
        at(1.5, "pricing-3 blackholed",
           lambda: proxy_command(control, "blackhole on"))

    try:
        out, _ = load.communicate(timeout=settings["seconds"] + 20)
    except subprocess.TimeoutExpired:
        raise AssertionError("chaos_load did not finish in time")
    check(load.returncode == 0, f"chaos_load exited {load.returncode}")
    tl = Timeline(csv, [" ".join(first)] + out.splitlines(), marks)
    tl.write_events(os.path.join(OUT, SCENARIO + ".events"))
    end = t0 + settings["seconds"] * 1000 + 200
    total = tl.total
    rate = total["ok"] / max(1, total["calls"])
    print(f"calls={total['calls']} ok={total['ok']} "
          f"failed={total['failed']} success={rate:.4%}")
    for t, ep, a, b in tl.events:
        print(f"  t={(t - t0) / 1000:6.3f}s {ep} {a} -> {b}")

    if SCENARIO == "one_fails":
        bad, fail_at, heal_at = addrs[0], marks[0][0], marks[1][0]
        opened = tl.first_event(bad, "OPEN", fail_at - 100)
        check(opened is not None and opened - fail_at <= 1000,
              f"pricing-1's breaker opens within 1 s of the fault "
              f"({None if opened is None else opened - fail_at} ms)")
        check(rate >= 0.999, f"success with retries >= 99.9% ({rate:.4%})")
        served = tl.sum(bad, "calls", opened or fail_at, heal_at)
        check(served == 0, f"pricing-1 answers no call while failing "
                           f"({served})")
        others = [tl.sum(a, "calls", opened or fail_at, heal_at)
                  for a in addrs[1:]]
        check(min(others) > 0, f"its share moves to the others {others}")
        # Open interval 1000 ms (x1.2 jitter at most) plus the probes.
        closed = tl.first_event(bad, "CLOSED", heal_at)
        check(closed is not None and closed - heal_at <= 1200 + 500,
              f"after recovery: probed, then CLOSED within open interval "
              f"+ probe time ({None if closed is None else closed - heal_at}"
              f" ms)")
        probed = tl.first_event(bad, "HALF_OPEN", heal_at - 1300,
                                closed or end)
        check(probed is not None and (closed is None or probed <= closed),
              "HALF_OPEN came before CLOSED")
        back = tl.sum(bad, "calls", (closed or end), end)
        check(back > 0, f"pricing-1 serves again once closed ({back} calls)")
    elif SCENARIO == "all_fail":
        fail_at = marks[0][0]
        opened = [tl.first_event(a, "OPEN", fail_at - 100) for a in addrs]
        check(all(o is not None and o - fail_at <= 1000 for o in opened),
              f"every breaker opens within 1 s "
              f"{[None if o is None else o - fail_at for o in opened]}")
        last_open = max(o or end for o in opened)
        rejected = tl.rows_of("none", last_open + 100, end)
        n = sum(r["calls"] for r in rejected)
        check(n > 100, f"calls are rejected without an endpoint ({n})")
        p50 = sorted(r["p50_us"] for r in rejected if r["calls"] > 0)
        median = p50[len(p50) // 2] if p50 else None
        check(median is not None and median < 1000,
              f"rejections are sub-millisecond (median of p50s "
              f"{median} us)")
        allrows = tl.rows_of("all", last_open + 100, end)
        p99 = sorted(r["p99_us"] for r in allrows if r["calls"] > 0)
        check(p99 and p99[len(p99) // 2] < 50000,
              f"calls do not pile up (median p99 {p99[len(p99) // 2] if p99 else None} us)")
    elif SCENARIO == "slow":
        slow, slow_at = addrs[1], marks[0][0]
        opened = tl.first_event(slow, "OPEN", slow_at - 100)
        check(opened is not None and opened - slow_at <= 2500,
              f"the slow-call rule trips pricing-2 "
              f"({None if opened is None else opened - slow_at} ms)")
        check(rate >= 0.999, f"slow calls still succeed ({rate:.4%})")
        if opened is not None:
            rows = tl.rows_of("all", opened + 400, end)
            p50 = sorted(r["p50_us"] for r in rows if r["calls"] > 0)
            check(p50 and p50[len(p50) // 2] < 100000,
                  "once open, most calls avoid the slow replica (median p50 "
                  f"{p50[len(p50) // 2] if p50 else None} us)")
    elif SCENARIO == "blackhole":
        hole, hole_at = addrs[2], marks[0][0]
        opened = tl.first_event(hole, "OPEN", hole_at - 100)
        check(opened is not None and opened - hole_at <= 2000,
              f"the per-attempt timeouts trip the blackholed replica "
              f"({None if opened is None else opened - hole_at} ms)")
        check(rate >= 0.999, f"retries elsewhere keep success >= 99.9% "
                             f"({rate:.4%})")
        worst = max(r["max_us"] for r in tl.rows_of("all", t0, end))
        check(worst <= 500000 + 100000,
              f"no call outlives its 500 ms deadline ({worst} us)")

    elif SCENARIO == "adaptive":
        fail_at, heal_at = marks[0][0], marks[1][0]
        # With no accepts in the window, a request is rejected in the client
        # with probability requests / (requests + 1): nearly all of them.
        calls = tl.sum("all", "calls", heal_at - 600, heal_at)
        local = tl.sum("none", "calls", heal_at - 600, heal_at)
        check(calls > 0 and local >= 0.8 * calls,
              f"once the window holds only failures, >= 80% of calls are "
              f"throttled in the client ({local} of {calls})")
        sent = tl.sum("all", "calls", fail_at, heal_at) - \
            tl.sum("none", "calls", fail_at, heal_at)
        check(sent > 0, f"some calls still go out, to notice recovery "
                        f"({sent})")
        # Each success lets more through: recovery grows about e-fold per
        # window (1 s here), from a few accepts, so it takes a few windows and
        # varies from run to run; 7 s later the throttle is open again.
        late = tl.sum("all", "calls", end - 1700, end - 200)
        late_ok = tl.sum("all", "ok", end - 1700, end - 200)
        check(late > 0 and late_ok >= 0.9 * late,
              f"after recovery the throttle lets calls through again "
              f"({late_ok} of {late} ok in the last 1.5 s)")

    if PLOT:
        titles = {"one_fails": "one replica fails for 3 s, then recovers",
                  "all_fail": "every replica fails",
                  "slow": "one replica turns slow (300 ms)",
                  "blackhole": "the path to one replica is blackholed",
                  "adaptive": "all fail for 2 s, adaptive throttle"}
        plot(tl, addrs, names, f"chaos scenario {SCENARIO}: "
             f"{titles[SCENARIO]}", os.path.join(OUT, SCENARIO + ".png"))


def main():
    try:
        run()
    except AssertionError as e:
        check(False, str(e))
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    if failures:
        print(f"{len(failures)} check(s) failed", flush=True)
        sys.exit(1)
    print("all checks passed", flush=True)


main()
