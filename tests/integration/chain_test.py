#!/usr/bin/python3
"""Deadline and cancellation across three services (A -> B -> C).

Starts three chain_server processes on 127.0.0.1 (C works 2 s), then:
  1. calls A with a 200 ms deadline: the client must get DEADLINE_EXCEEDED
     within 250 ms, and B's and C's handler contexts must end within 50 ms of
     the edge deadline, C's work stopping;
  2. calls A with a 5 s deadline and cancels at 100 ms: the client gets
     CANCELLED and every handler context downstream ends within 50 ms of the
     cancel.
Times come from CLOCK_MONOTONIC, which all processes on the machine share.
Usage: chain_test.py <chain_server> <chain_client>
"""
import queue
import subprocess
import sys
import threading
import time

SERVER, CLIENT = sys.argv[1], sys.argv[2]
procs = []
events = queue.Queue()


def start(name, *args):
    p = subprocess.Popen([SERVER, f"--name={name}", "--port=0", *args],
                         stdout=subprocess.PIPE, text=True)
    procs.append(p)
    port_q = queue.Queue()

    def reader():
        for line in p.stdout:
            if line.startswith("PORT "):
                port_q.put(int(line.split()[1]))
            elif line.startswith("EVENT "):
                events.put(line.split())
    threading.Thread(target=reader, daemon=True).start()
    return port_q.get(timeout=10)


def parse(fields):
    return dict(f.split("=", 1) for f in fields if "=" in f)


def wait_events(names, job, timeout=5.0):
    """Waits for one handler_end event of `job` from each name."""
    got = {}
    deadline = time.monotonic() + timeout
    while set(got) != set(names):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no handler_end from {set(names) - set(got)}")
        fields = events.get(timeout=left)
        kv = parse(fields)
        if kv.get("job") == job:  # the client's warm-up call is skipped
            got[fields[1]] = kv
    return got


def run_client(port, *args):
    out = subprocess.run([CLIENT, f"--target=127.0.0.1:{port}", *args],
                         capture_output=True, text=True, timeout=20)
    line = [l for l in out.stdout.splitlines() if l.startswith("RESULT ")][0]
    return parse(line.split()[1:]), line


failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


try:
    port_c = start("C", "--work_ms=2000")
    port_b = start("B", f"--next=127.0.0.1:{port_c}")
    port_a = start("A", f"--next=127.0.0.1:{port_b}")

    # 1. A 200 ms deadline at the edge.
    res, line = run_client(port_a, "--timeout_ms=200")
    print(line)
    start_ns, end_ns = int(res["start_ns"]), int(res["end_ns"])
    edge_deadline = start_ns + 200_000_000
    took_ms = (end_ns - start_ns) / 1e6
    check(res["code"] == "DEADLINE_EXCEEDED",
          f"client status {res['code']} (want DEADLINE_EXCEEDED)")
    check(took_ms <= 250, f"client returned after {took_ms:.1f} ms (<= 250)")
    ev = wait_events(["A", "B", "C"], "job")
    for name in ("B", "C"):
        ended = int(ev[name]["ctx_ended_at_ns"])
        late_ms = (ended - edge_deadline) / 1e6
        check(ended != 0 and abs(late_ms) <= 50,
              f"{name}'s handler context ended {late_ms:+.1f} ms from the edge "
              f"deadline (within 50 ms), cause {ev[name]['cause']}")
    check(ev["C"]["work"] == "stopped", f"C's work {ev['C']['work']} (stopped)")
    stop_ms = (int(ev["C"]["at_ns"]) - edge_deadline) / 1e6
    check(stop_ms <= 50, f"C's handler returned {stop_ms:+.1f} ms after the "
          "edge deadline (<= 50 ms)")

    # 2. A client cancel at 100 ms.
    res, line = run_client(port_a, "--timeout_ms=5000", "--cancel_after_ms=100")
    print(line)
    cancel_ns = int(res["cancel_ns"])
    check(res["code"] == "CANCELLED", f"client status {res['code']} (CANCELLED)")
    ev = wait_events(["A", "B", "C"], "job")
    for name in ("A", "B", "C"):
        ended = int(ev[name]["ctx_ended_at_ns"])
        late_ms = (ended - cancel_ns) / 1e6
        check(ended != 0 and 0 <= late_ms <= 50,
              f"{name}'s handler context ended {late_ms:+.1f} ms after the "
              f"cancel (within 50 ms), cause {ev[name]['cause']}")
    check(ev["C"]["work"] == "stopped", f"C's work {ev['C']['work']} (stopped)")
finally:
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()

print(f"{'FAILED' if failures else 'PASSED'}: chain deadline and cancel")
sys.exit(1 if failures else 0)
