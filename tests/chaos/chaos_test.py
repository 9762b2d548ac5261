#!/usr/bin/python3
"""Integration test of h2rpc-chaos-proxy with real traffic on 127.0.0.1.

Usage: chaos_test.py <group> <h2rpc-chaos-proxy> [<greeter_server> <greeter_client>]

Each group starts its own proxy (and upstreams) on OS-chosen ports:
  bytes    bytes pass unchanged (checksums over MB, one and many connections)
  faults   latency, jitter keeps order, bandwidth, reset-all, reset-prob,
           refuse, blackhole on/stall, halfopen up/down/drop
  control  bad commands get ERR and change nothing; pipelining, EOF, quit;
           faults given as flags; bad flags
  memory   a reader that does not read, either side: the proxy's RSS stays
           under 20 MB while 50 MB wait, and every byte arrives afterwards
  grpc     greeter_client through the proxy: the status each fault produces
Every wait has a time limit; every group ends by checking that the proxy has
no connection left open and stops cleanly on SIGTERM. Only processes started
here are stopped, by PID.
"""
import hashlib
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time

GROUP, PROXY = sys.argv[1], sys.argv[2]
GREETER_SERVER = sys.argv[3] if len(sys.argv) > 3 else None
GREETER_CLIENT = sys.argv[4] if len(sys.argv) > 4 else None
HOST = "127.0.0.1"
procs = []
failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)
    return ok


def wait_for(cond, timeout, what, step=0.02):
    """Polls cond() until it is true; fails the test after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(step)


# ---- upstreams (threads in this process) ----

class Server:
    """A TCP server on 127.0.0.1:0 running handler(conn) per connection."""

    def __init__(self, handler):
        self.sock = socket.socket()
        self.sock.bind((HOST, 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.handler = handler
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self._run, args=(c,), daemon=True).start()

    def _run(self, c):
        try:
            self.handler(c)
        except OSError:
            pass
        finally:
            c.close()

    def close(self):
        self.sock.close()


def echo(c):
    while True:
        d = c.recv(65536)
        if not d:
            return
        c.sendall(d)


# ---- the proxy ----

class Proxy:
    def __init__(self, upstream_port, *flags):
        self.p = subprocess.Popen(
            [PROXY, f"--upstream={HOST}:{upstream_port}", "--seed=1", *flags],
            stdout=subprocess.PIPE, text=True)
        procs.append(self.p)
        lines = queue.Queue()

        def reader():
            for line in self.p.stdout:
                lines.put(line.split())
        threading.Thread(target=reader, daemon=True).start()
        got = {}
        while len(got) < 2:
            words = lines.get(timeout=10)
            if len(words) == 2 and words[0] in ("PORT", "CONTROL"):
                got[words[0]] = int(words[1])
        self.port, self.control_port = got["PORT"], got["CONTROL"]
        self.ctl = Control(self.control_port)
        # Descriptors with the listener open (it is closed under refuse);
        # the control connection is accepted by the time status answers.
        refusing = self.status()["refuse"] == "on"
        self.fds = self.fd_count() + refusing

    def fd_count(self):
        return len(os.listdir(f"/proc/{self.p.pid}/fd"))

    def cmd(self, line):
        return self.ctl.cmd(line)

    def ok(self, line):
        answer = self.cmd(line)
        if not answer.startswith("OK"):
            raise AssertionError(f"{line!r} answered {answer!r}")
        return answer

    def status(self):
        return dict(w.split("=", 1) for w in self.ok("status").split()[1:])

    def stat(self, key):
        return int(self.status()[key])

    def connect(self, timeout=10):
        return socket.create_connection((HOST, self.port), timeout=timeout)

    def rss_kb(self):
        with open(f"/proc/{self.p.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def finish(self):
        """Nothing left open, then a clean stop on SIGTERM."""
        assert self.status()["refuse"] == "off"
        wait_for(lambda: self.stat("active") == 0, 10,
                 "the proxy to have no connection open")
        fds = self.fd_count()
        check(fds == self.fds, f"proxy has no connection left open and "
              f"{fds} descriptors, as at the start ({self.fds})")
        self.ctl.close()
        self.p.send_signal(signal.SIGTERM)
        rc = self.p.wait(timeout=5)
        check(rc == 0, f"proxy stopped on SIGTERM with status {rc} (0)")


class Control:
    def __init__(self, port):
        self.sock = socket.create_connection((HOST, port), timeout=10)
        self.f = self.sock.makefile("rwb")

    def send_raw(self, data):
        self.f.write(data)
        self.f.flush()

    def read_line(self):
        line = self.f.readline()
        if not line:
            raise AssertionError("control connection closed")
        return line.decode().rstrip("\n")

    def cmd(self, line):
        self.send_raw(line.encode() + b"\n")
        return self.read_line()

    def close(self):
        self.f.close()
        self.sock.close()


def round_trip(s, payload=b"ping"):
    t = time.monotonic()
    s.sendall(payload)
    got = b""
    while len(got) < len(payload):
        d = s.recv(65536)
        if not d:
            raise AssertionError("connection closed during a round trip")
        got += d
    assert got == payload, "echo changed the bytes"
    return time.monotonic() - t


def echo_through(proxy, data, timeout=30):
    """Sends data through the proxy to the echo server, half-closes, and
    returns everything read back until EOF, and the time it took."""
    s = proxy.connect(timeout=timeout)
    t = time.monotonic()

    def send():
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
    th = threading.Thread(target=send, daemon=True)
    th.start()
    got = bytearray()
    while True:
        d = s.recv(1 << 16)
        if not d:
            break
        got += d
    took = time.monotonic() - t
    th.join(timeout)
    s.close()
    return bytes(got), took


def expect_silence(s, seconds=0.5):
    """True when s neither receives bytes nor closes within `seconds`."""
    s.settimeout(seconds)
    try:
        s.recv(100)  # bytes or EOF: not silent
        return False
    except socket.timeout:
        return True
    finally:
        s.settimeout(10)


def expect_reset(s):
    """True when the connection was reset (a read fails or sees EOF)."""
    s.settimeout(5)
    try:
        s.sendall(b"x")
        return s.recv(100) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


# ---- groups ----

def group_bytes():
    up = Server(echo)
    px = Proxy(up.port)
    data = os.urandom(4 << 20)
    got, took = echo_through(px, data)
    check(hashlib.sha256(got).digest() == hashlib.sha256(data).digest(),
          f"4 MiB echoed unchanged ({len(got)} bytes, {took:.2f} s)")

    results = [None] * 8
    blobs = [os.urandom(512 << 10) for _ in results]

    def one(i):
        results[i] = echo_through(px, blobs[i])[0] == blobs[i]
    ths = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in ths:
        t.start()
    for t in ths:
        t.join(30)
    check(all(results), "8 concurrent connections x 512 KiB echoed unchanged")
    st = px.status()
    check(int(st["bytes_up"]) == (4 << 20) + 8 * (512 << 10) and
          int(st["bytes_down"]) == int(st["bytes_up"]),
          f"byte counters match ({st['bytes_up']} up, {st['bytes_down']} down)")
    px.finish()
    up.close()


def group_faults():
    up = Server(echo)
    px = Proxy(up.port)

    # Latency: a round trip grows by about twice the added delay.
    s = px.connect()
    base = min(round_trip(s) for _ in range(5))
    px.ok("latency 200")
    slow = min(round_trip(s) for _ in range(2))
    check(slow >= base + 0.150, f"latency 200: round trip {base * 1e3:.2f} ms "
          f"-> {slow * 1e3:.2f} ms (grew >= 150 ms)")
    # Jitter delays chunks differently but never reorders bytes.
    px.ok("latency 20 30")
    msgs = b"".join(b"%06d;" % i for i in range(300))

    def trickle():
        for i in range(0, len(msgs), 7):
            s.sendall(msgs[i:i + 7])
            time.sleep(0.0005)
    th = threading.Thread(target=trickle, daemon=True)
    th.start()
    got = b""
    while len(got) < len(msgs):
        d = s.recv(65536)
        if not d:
            break
        got += d
    th.join(10)
    check(got == msgs, "latency 20 30: 300 small writes arrive in order")
    px.ok("clear")
    fast = min(round_trip(s) for _ in range(3))
    check(fast < base + 0.1, f"clear: round trip back to {fast * 1e3:.2f} ms")

    # Bandwidth: 300 kB at 100 kB/s each way cannot take less than ~3 s.
    px.ok("bandwidth 100000")
    data = os.urandom(300000)
    got, took = echo_through(px, data)
    check(got == data and 2.0 <= took <= 20,
          f"bandwidth 100000: 300 kB echoed in {took:.2f} s (2..20 s)")
    px.ok("clear")

    # reset-all: open connections break, new ones work.
    s2 = px.connect()
    round_trip(s2)
    answer = px.ok("reset-all")
    check(answer == "OK reset 2", f"reset-all answered {answer!r}")
    check(expect_reset(s) and expect_reset(s2),
          "reset-all: open connections see a reset")
    s.close()
    s2.close()
    s = px.connect()
    round_trip(s)
    check(True, "after reset-all a new connection works")
    s.close()

    # reset-prob: with p = 1 every new connection is reset.
    before = px.stat("reset")
    px.ok("reset-prob 1")
    for _ in range(3):
        try:
            r = px.connect()
        except ConnectionResetError:  # the RST beat connect()'s return
            check(True, "reset-prob 1: new connection reset (in connect)")
            continue
        check(expect_reset(r), "reset-prob 1: new connection reset")
        r.close()
    check(px.stat("reset") == before + 3, "reset counter counts them")
    px.ok("reset-prob 0")
    s = px.connect()
    round_trip(s)

    # refuse: connects fail; open connections carry on; refuse off restores.
    px.ok("refuse on")
    try:
        socket.create_connection((HOST, px.port), timeout=5).close()
        check(False, "refuse on: connect should fail")
    except ConnectionRefusedError:
        check(True, "refuse on: connect refused")
    round_trip(s)
    check(True, "refuse on: an open connection still works")
    px.ok("refuse off")
    r = px.connect()
    round_trip(r)
    check(True, "refuse off: connects work again")
    r.close()

    # blackhole on: bytes are read and dropped; nothing comes back.
    px.ok("blackhole on")
    dropped = px.stat("dropped_up")
    s.sendall(b"lost")
    check(expect_silence(s), "blackhole on: no answer")
    wait_for(lambda: px.stat("dropped_up") >= dropped + 4, 5,
             "the blackholed bytes to be counted as dropped")
    px.ok("blackhole off")
    s.close()
    s = px.connect()
    round_trip(s)
    check(True, "blackhole off: a new connection works")

    # blackhole stall: nothing read, so nothing lost: the echo comes after.
    px.ok("blackhole stall")
    up_bytes = px.stat("bytes_up")
    s.sendall(b"held")
    check(expect_silence(s), "blackhole stall: no answer")
    check(px.stat("bytes_up") == up_bytes, "blackhole stall: nothing forwarded")
    px.ok("blackhole off")
    s.settimeout(5)
    check(s.recv(4) == b"held", "blackhole off after stall: held bytes arrive")

    # halfopen down: the server answers, the client never hears it.
    px.ok("halfopen down")
    dropped = px.stat("dropped_down")
    s.sendall(b"down")
    check(expect_silence(s), "halfopen down: no answer")
    wait_for(lambda: px.stat("dropped_down") >= dropped + 4, 5,
             "the server's answer to be dropped")
    check(True, "halfopen down: the server's answer was dropped")
    # halfopen up: the server never hears the client.
    px.ok("halfopen up")
    dropped = px.stat("dropped_up")
    s.sendall(b"upup")
    check(expect_silence(s), "halfopen up: no answer")
    check(px.stat("dropped_up") >= dropped + 4, "halfopen up: request dropped")
    px.ok("halfopen off")
    s.close()

    # halfopen drop: the server side goes, the client is never told.
    s = px.connect()
    round_trip(s)
    servers_before = len(up.conns)
    px.ok("halfopen drop")
    s.sendall(b"anyone?")
    check(expect_silence(s, 1.0),
          "halfopen drop: an open connection neither answers nor closes")
    n = px.connect()
    n.sendall(b"hello?")
    check(expect_silence(n), "halfopen drop: a new connection never answers")
    check(len(up.conns) == servers_before,
          "halfopen drop: no upstream connection for the new client")
    px.ok("halfopen off")
    for c in (s, n):
        c.close()
    s = px.connect()
    round_trip(s)
    check(True, "halfopen off: a new connection works")
    s.close()
    px.finish()
    up.close()


def group_control():
    up = Server(echo)
    px = Proxy(up.port)
    clean = px.status()
    bad = [b"bogus", b"latency", b"latency abc", b"latency 1 2 3",
           b"latency -1", b"bandwidth 1e9", b"reset-prob 2", b"reset-prob nan",
           b"blackhole maybe", b"halfopen left", b"refuse yes",
           b"upstream nowhere", b"upstream 127.0.0.1:0", b"status please",
           b"\x00\xff\xfe binary", b"x" * 5000, b"a b c d e f g"]
    for line in bad:
        answer = px.ctl.cmd(line.decode("latin-1"))
        check(answer.startswith("ERR ") and len(answer) > 4,
              f"{line[:24]!r}: {answer!r}")
    check(px.status() == clean, "after the bad lines nothing changed")
    s = px.connect()
    round_trip(s)
    s.close()
    check(True, "the proxy still forwards after the bad lines")

    # Several commands in one write; answers in order.
    px.ctl.send_raw(b"latency 10\r\nbandwidth 5000000\n\nstatus\n")
    a = [px.ctl.read_line() for _ in range(3)]
    check(a[0].startswith("OK latency_ms=10 ") and "bandwidth_bps=5000000" in a[1]
          and a[2].startswith("OK ") and "latency_ms=10" in a[2],
          "pipelined commands answered in order, blank line ignored")
    px.ok("clear")
    check(px.ok("help").startswith("OK latency"), "help lists the commands")

    # A second client, ending without a newline: still answered, then closed.
    c2 = socket.create_connection((HOST, px.control_port), timeout=5)
    c2.sendall(b"status")
    c2.shutdown(socket.SHUT_WR)
    out = b""
    while True:
        d = c2.recv(4096)
        if not d:
            break
        out += d
    c2.close()
    check(out.startswith(b"OK ") and out.endswith(b"\n") and out.count(b"\n") == 1,
          "a last line without newline is answered before the close")
    c3 = Control(px.control_port)
    check(c3.cmd("quit") == "OK bye" and c3.f.readline() == b"",
          "quit answers and closes")
    c3.close()
    px.finish()

    # Faults as flags, in both flag forms.
    px = Proxy(up.port, "--latency_ms=50", "--jitter_ms", "5",
               "--bandwidth_bps", "1000000", "--reset_prob=0.5",
               "--blackhole=stall", "--halfopen=up", "--refuse=on")
    st = px.status()
    want = {"latency_ms": "50", "jitter_ms": "5", "bandwidth_bps": "1000000",
            "reset_prob": "0.5", "blackhole": "stall", "halfopen": "up",
            "refuse": "on", "seed": "1"}
    check(all(st[k] == v for k, v in want.items()),
          f"flags set the initial faults ({st})")
    try:
        socket.create_connection((HOST, px.port), timeout=5).close()
        check(False, "--refuse=on: connect should fail")
    except ConnectionRefusedError:
        check(True, "--refuse=on: connect refused")
    px.ok("clear")
    s = px.connect()
    round_trip(s)
    s.close()
    check(True, "after clear the port listens again")
    px.finish()
    for flags in (["--latency_ms=abc"], ["--reset_prob=3"], ["--blackhole=x"],
                  ["--nosuchflag=1"], []):
        args = [PROXY, *flags] if not flags else \
            [PROXY, f"--upstream={HOST}:{up.port}", *flags]
        r = subprocess.run(args, capture_output=True, text=True, timeout=10)
        check(r.returncode == 2 and r.stdout == "" and r.stderr,
              f"{flags or 'no --upstream'}: exit {r.returncode} (2) with a "
              f"message: {r.stderr.strip().splitlines()[-1] if r.stderr else ''}")
    up.close()


MB50 = 50 << 20
RSS_LIMIT_KB = 20 << 10


def group_memory():
    # Up: the server does not read until told to.
    go = threading.Event()
    received = [0]

    def sink(c):
        go.wait(60)
        while True:
            d = c.recv(1 << 20)
            if not d:
                return
            received[0] += len(d)
    sink_srv = Server(sink)
    px = Proxy(sink_srv.port)
    s = px.connect(timeout=30)
    sent = [0]
    chunk = b"\xab" * (1 << 20)

    def send():
        for _ in range(50):
            s.sendall(chunk)
            sent[0] += len(chunk)
        s.shutdown(socket.SHUT_WR)
    th = threading.Thread(target=send, daemon=True)
    th.start()
    stall = wait_for(stalled(lambda: sent[0]), 20, "the sender to stall")
    rss = px.rss_kb()
    check(sent[0] < MB50, f"slow reader: the sender stalled at {stall >> 20} MiB "
          "of 50 (the proxy stopped reading)")
    check(rss < RSS_LIMIT_KB, f"slow reader upstream: proxy VmRSS {rss} kB "
          f"(< {RSS_LIMIT_KB})")
    go.set()
    peak = watch_rss(px, lambda: received[0] >= MB50, 30)
    th.join(10)
    check(received[0] == MB50, f"all 50 MiB arrived ({received[0]} bytes)")
    check(peak < RSS_LIMIT_KB, f"while draining: peak VmRSS {peak} kB")
    s.close()
    px.finish()
    sink_srv.close()

    # Down: the server sends 50 MB to a client that does not read yet.
    def source(c):
        for _ in range(50):
            c.sendall(chunk)
    src_srv = Server(source)
    px = Proxy(src_srv.port)
    s = px.connect(timeout=30)
    wait_for(stalled(lambda: px.stat("bytes_down"), quiet=1.0), 20,
             "the server's bytes to back up")
    rss = px.rss_kb()
    check(px.stat("bytes_down") < MB50 and rss < RSS_LIMIT_KB,
          f"slow reader client: proxy VmRSS {rss} kB (< {RSS_LIMIT_KB}) with "
          f"{px.stat('bytes_down') >> 20} MiB passed")
    got = [0]

    def drain():
        while True:
            d = s.recv(1 << 20)
            if not d:
                return
            got[0] += len(d)
    th = threading.Thread(target=drain, daemon=True)
    th.start()
    peak = watch_rss(px, lambda: got[0] >= MB50, 30)
    th.join(10)
    check(got[0] == MB50, f"all 50 MiB reached the client ({got[0]} bytes)")
    check(peak < RSS_LIMIT_KB, f"while draining: peak VmRSS {peak} kB")
    s.close()
    px.finish()
    src_srv.close()


def stalled(value, quiet=0.5):
    """A condition true once value() has not grown for `quiet` seconds."""
    last = [value(), time.monotonic()]

    def cond():
        v = value()
        if v != last[0]:
            last[0], last[1] = v, time.monotonic()
            return False
        return v if time.monotonic() - last[1] >= quiet and v > 0 else False
    return cond


def watch_rss(px, done, timeout):
    peak = px.rss_kb()

    def cond():
        nonlocal peak
        peak = max(peak, px.rss_kb())
        return done()
    wait_for(cond, timeout, "the transfer to finish", step=0.01)
    return peak


def greeter(port, timeout_ms=2000):
    t = time.monotonic()
    r = subprocess.run([GREETER_CLIENT, f"--target={HOST}:{port}",
                        f"--timeout_ms={timeout_ms}"],
                       capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout.strip() + r.stderr.strip(), \
        time.monotonic() - t


def group_grpc():
    srv = subprocess.Popen([GREETER_SERVER, "--port=0"], stdout=subprocess.PIPE,
                           text=True)
    procs.append(srv)
    line = srv.stdout.readline().split()
    assert line[0] == "PORT", line
    px = Proxy(int(line[1]))
    rc, out, base = greeter(px.port)
    check(rc == 0 and "Hello" in out, f"through the proxy: {out!r}")
    px.ok("latency 200")
    rc, out, slow = greeter(px.port)
    check(rc == 0 and slow >= base + 0.150,
          f"latency 200: call {base * 1e3:.0f} -> {slow * 1e3:.0f} ms")
    px.ok("latency 400")
    rc, out, took = greeter(px.port, timeout_ms=500)
    check(rc == 1 and "DEADLINE_EXCEEDED" in out,
          f"latency 400, 500 ms deadline: {out!r} after {took * 1e3:.0f} ms")
    # reset-all while a call is in flight (held up by latency).
    wait_for(lambda: px.stat("active") == 0, 10,
             "the last call's connection to close")
    px.ok("latency 1000")
    t = time.monotonic()
    call = subprocess.Popen([GREETER_CLIENT, f"--target={HOST}:{px.port}",
                             "--timeout_ms=5000"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    procs.append(call)
    wait_for(lambda: px.stat("queued_up") > 0, 5,
             "the call's bytes to wait in the proxy")
    px.ok("reset-all")
    out = call.communicate(timeout=10)[0].strip()
    took = time.monotonic() - t
    check(call.returncode == 1 and "UNAVAILABLE" in out and took < 2,
          f"reset-all mid-call: {out!r} after {took * 1e3:.0f} ms")
    px.ok("clear")
    # An upstream that refuses: the proxy resets the client it accepted.
    closed = socket.socket()
    closed.bind((HOST, 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    px.ok(f"upstream {HOST}:{closed_port}")
    rc, out, took = greeter(px.port, timeout_ms=500)
    check(rc == 1 and "UNAVAILABLE" in out and px.stat("failed") == 1,
          f"upstream down: {out!r} after {took * 1e3:.0f} ms (UNAVAILABLE)")
    px.ok(f"upstream {HOST}:{line[1]}")
    cases = [("blackhole on", "DEADLINE_EXCEEDED"),
             ("blackhole stall", "DEADLINE_EXCEEDED"),
             ("halfopen drop", "DEADLINE_EXCEEDED"),
             ("halfopen down", "DEADLINE_EXCEEDED"),
             ("refuse on", "UNAVAILABLE"),
             ("reset-prob 1", "UNAVAILABLE")]
    for fault, status in cases:
        px.ok(fault)
        rc, out, took = greeter(px.port, timeout_ms=500)
        check(rc == 1 and status in out and took < 10,
              f"{fault}: {out!r} after {took * 1e3:.0f} ms (want {status})")
        px.ok("clear")
        px.ok("reset-all")  # connections left from the fault
        rc, out, _ = greeter(px.port)
        check(rc == 0, f"after {fault}, clear: {out!r}")
    px.finish()
    srv.send_signal(signal.SIGTERM)
    srv.wait(timeout=10)


GROUPS = {"bytes": group_bytes, "faults": group_faults,
          "control": group_control, "memory": group_memory,
          "grpc": group_grpc}

try:
    GROUPS[GROUP]()
except Exception as e:  # noqa: BLE001 - any surprise is a failure
    check(False, f"{type(e).__name__}: {e}")
finally:
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=5)
print(f"{GROUP}: {len(failures)} failure(s)")
sys.exit(1 if failures else 0)
