#!/usr/bin/python3
"""Integration tests of h2rpc-registry, driving the real binaries.

Usage: registry_test.py CASE --registry=BIN --cli=BIN --announce=BIN --idl=DIR

Cases (each a ctest test of its own):
  crash    SIGKILL the registry during a stream of registrations from four
           client threads, restart it on the same data directory, three
           rounds: every acknowledged registration is there (and leases
           granted before the crash can be kept alive after it).
  lease    an announced instance whose process is SIGKILLed leaves within
           TTL + 1 s and a watcher (the CLI) hears it; a graceful stop and a
           CLI deregister remove it at once; an announcer survives a registry
           restart (keep-alives resume on the restored lease).
  resume   a watcher that disconnects and resumes from its last revision gets
           exactly what it missed; from before the history, a snapshot; from
           now, a PROGRESS; the watcher limit answers RESOURCE_EXHAUSTED.
  badinput each malformed request gets its status and message, and the
           registry keeps answering with its state unharmed.
  grpcio   a stock grpcio client (stubs from grpc_tools) calls Register,
           Resolve, KeepAlive, Deregister and Watch, checked field by field.
  cli      the CLI's commands, messages and exit codes against
           h2rpc-registry, with a watch that sees each change live.
  cli_etcd the same assertions against a real etcd the test starts
           (skipped, exit 77, without /usr/bin/etcd and etcdctl).

Clients are grpcio stubs generated from the registry's proto at run time, so
the tests also show a stock gRPC client speaking to the h2rpc server. Every
process runs on 127.0.0.1 with OS-chosen ports, is waited for with time
limits, and is killed at the end; the test fails if one is left running.
"""
import argparse
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

ARGS = None
PROCS = []
TMP = tempfile.mkdtemp(prefix="h2rpc-registry-test-")
FAILURES = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        FAILURES.append(what)
    return ok


def require(ok, what):
    if not check(ok, what):
        raise AssertionError(what)


# ------------------------------------------------------------------ procs

class Proc:
    """A child process whose stdout lines arrive in a queue."""

    def __init__(self, args, name, preexec_fn=None):
        self.name = name
        self.p = subprocess.Popen(args, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True,
                                  preexec_fn=preexec_fn)
        PROCS.append(self)
        self.lines = queue.Queue()
        self.err = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def _read_err(self):
        for line in self.p.stderr:
            self.err.append(line.rstrip("\n"))

    def wait_line(self, pattern, timeout):
        """The first line matching pattern (a regex) within timeout, or
        None. Lines before it are consumed."""
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                return None
            if line is None:
                self.lines.put(None)  # stays at EOF
                return None
            if rx.search(line):
                return line

    def signal(self, sig):
        if self.p.poll() is None:
            self.p.send_signal(sig)

    def wait(self, timeout=10):
        return self.p.wait(timeout=timeout)


def start_registry(data_dir, port=0, extra=()):
    p = Proc([ARGS.registry, f"--listen=127.0.0.1:{port}",
              f"--data-dir={data_dir}", *extra], "h2rpc-registry")
    line = p.wait_line(r"^PORT \d+$", 10)
    if line is None:
        raise AssertionError("registry did not start: " + "\n".join(p.err))
    return p, int(line.split()[1])


def kill9(p):
    p.signal(signal.SIGKILL)
    p.wait()


def wait_until(fn, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


# ------------------------------------------------------------------- grpc

def load_stubs():
    out = os.path.join(TMP, "py")
    os.makedirs(out)
    from grpc_tools import protoc
    rc = protoc.main(["protoc", f"-I{ARGS.idl}", f"--python_out={out}",
                      f"--grpc_python_out={out}",
                      "h2rpc/registry/v1/registry.proto"])
    if rc != 0:
        raise AssertionError("grpc_tools.protoc failed")
    sys.path.insert(0, out)
    global grpc, pb, pb_grpc
    import grpc
    from h2rpc.registry.v1 import registry_pb2 as pb
    from h2rpc.registry.v1 import registry_pb2_grpc as pb_grpc


def stub(port):
    ch = grpc.insecure_channel(f"127.0.0.1:{port}")
    return pb_grpc.RegistryStub(ch), ch


def instance(service, id_, address="127.0.0.1:9", **kw):
    return pb.Instance(service=service, id=id_, address=address, **kw)


def register(s, service, id_, ttl_ms=0, address="127.0.0.1:9", **kw):
    return s.Register(pb.RegisterRequest(
        instance=instance(service, id_, address, **kw), ttl_ms=ttl_ms,
        permanent=ttl_ms == 0), timeout=5)


def resolve_ids(s, service):
    r = s.Resolve(pb.ResolveRequest(service=service), timeout=5)
    return {i.id for i in r.instances}, r


def code_of(fn):
    try:
        fn()
    except grpc.RpcError as e:
        return e.code(), e.details()
    return grpc.StatusCode.OK, ""


class Watch:
    """A grpcio Watch whose events arrive in a queue."""

    def __init__(self, s, service, from_revision=0):
        self.call = s.Watch(pb.WatchRequest(service=service,
                                            from_revision=from_revision))
        self.events = queue.Queue()
        self.error = None
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        try:
            for ev in self.call:
                self.events.put(ev)
        except grpc.RpcError as e:
            self.error = e
        self.events.put(None)

    def next(self, timeout=5):
        try:
            return self.events.get(timeout=timeout)
        except queue.Empty:
            return None

    def cancel(self):
        self.call.cancel()


# ------------------------------------------------------------------ cases

def case_crash():
    data = os.path.join(TMP, "crash")
    acked_all, extras = set(), set()
    leases = {}
    service = "crash.svc"
    for rnd in range(3):
        reg, port = start_registry(data, extra=["--snapshot_every=37"])
        s, ch = stub(port)
        # A lease from before the crash must be renewable after it.
        lease = register(s, service, f"leased-{rnd}", ttl_ms=60000).lease_id
        leases[f"leased-{rnd}"] = lease
        acked_all.add(f"leased-{rnd}")
        acked, attempted = set(), set()
        lock = threading.Lock()
        counter = [0]

        def writer():
            cs, cch = stub(port)
            while True:
                with lock:
                    n = counter[0]
                    counter[0] += 1
                id_ = f"r{rnd}-{n}"
                with lock:
                    attempted.add(id_)
                try:
                    register(cs, service, id_, address=f"127.0.0.1:{1000 + n}")
                except grpc.RpcError:
                    break
                with lock:
                    acked.add(id_)
            cch.close()

        threads = [threading.Thread(target=writer) for _ in range(4)]
        for t in threads:
            t.start()
        wait_until(lambda: len(acked) >= 150 + 50 * rnd, 30,
                   "registrations before the kill")
        kill9(reg)
        for t in threads:
            t.join(timeout=20)
        require(not any(t.is_alive() for t in threads),
                f"round {rnd}: writers stopped after the kill")
        ch.close()
        acked_all |= acked
        reg, port = start_registry(data, extra=["--snapshot_every=37"])
        s, ch = stub(port)
        ids, _ = resolve_ids(s, service)
        missing = acked_all - ids
        check(not missing, f"round {rnd}: all {len(acked_all)} acknowledged "
              f"registrations survive SIGKILL (missing {sorted(missing)[:5]})")
        # Beyond what was acknowledged, at most the (up to four) calls in
        # flight at the kill may have made it.
        extra = ids - acked_all - extras
        check(extra <= attempted and len(extra) <= 4,
              f"round {rnd}: only in-flight registrations may also be there "
              f"({sorted(extra)})")
        extras |= extra
        for id_, lease in leases.items():
            if id_ in ids:
                r = s.KeepAlive(pb.KeepAliveRequest(lease_id=lease), timeout=5)
                check(r.ttl_ms == 60000,
                      f"round {rnd}: keep-alive of restored lease {lease}")
        ch.close()
        if rnd < 2:
            kill9(reg)
        else:
            reg.signal(signal.SIGTERM)
            check(reg.wait() == 0, "graceful stop exits 0")
    reg, port = start_registry(data)
    s, ch = stub(port)
    ids, _ = resolve_ids(s, service)
    check(acked_all <= ids, "state intact after a graceful stop and restart")
    ch.close()
    reg.signal(signal.SIGTERM)
    reg.wait()


def case_lease():
    data = os.path.join(TMP, "lease")
    reg, port = start_registry(data)
    url = f"registry://127.0.0.1:{port}"
    svc = "lease.svc"
    watcher = Proc([ARGS.cli, "registry", "watch", svc, f"--registry={url}"],
                   "watch")
    require(watcher.wait_line(rf"^# {svc}: 0 instance", 10) is not None,
            "watcher synced")

    def announce(id_, ttl=1500):
        a = Proc([ARGS.announce, f"--registry={url}", f"--service={svc}",
                  f"--id={id_}", "--address=127.0.0.1:7001",
                  f"--ttl_ms={ttl}"], "announce " + id_)
        require(a.wait_line(r"^ANNOUNCED", 10) is not None,
                f"{id_} announced")
        return a

    a1 = announce("a1")
    require(watcher.wait_line(rf"^\+ {svc} a1 127\.0\.0\.1:7001 ", 5)
            is not None, "watcher hears a1 arrive")
    # Keep-alives hold it for three TTLs (nothing may remove it meanwhile).
    check(watcher.wait_line(rf"^- {svc} a1 ", 4.5) is None,
          "a1 kept alive for 3 x TTL")
    t = time.monotonic()
    kill9(a1)
    line = watcher.wait_line(rf"^- {svc} a1 ", 1.5 + 1.0 + 0.5)
    took = time.monotonic() - t
    check(line is not None and took <= 2.5,
          f"a1 (SIGKILLed) leaves within TTL + 1 s ({took:.2f} s)")
    check(took >= 0.9, f"...but not before its lease ran out ({took:.2f} s)")

    a2 = announce("a2")
    require(watcher.wait_line(rf"^\+ {svc} a2 ", 5) is not None,
            "watcher hears a2")
    t = time.monotonic()
    a2.signal(signal.SIGTERM)
    line = watcher.wait_line(rf"^- {svc} a2 ", 1.0)
    check(line is not None,
          f"graceful stop deregisters at once ({time.monotonic() - t:.2f} s)")
    stopped = a2.wait_line(r"^STOPPED \d+", 5)
    check(stopped is not None and int(stopped.split()[1]) <= 1000,
          f"announcement stop within 1 s ({stopped})")
    check(a2.wait() == 0, "announcer exits 0")

    subprocess.run([ARGS.cli, "registry", "register", svc, "a3",
                    "127.0.0.1:7003", f"--registry={url}"], check=True,
                   capture_output=True, timeout=10)
    require(watcher.wait_line(rf"^\+ {svc} a3 ", 5) is not None,
            "watcher hears a3 (CLI register)")
    t = time.monotonic()
    subprocess.run([ARGS.cli, "registry", "deregister", svc, "a3",
                    f"--registry={url}"], check=True, capture_output=True,
                   timeout=10)
    check(watcher.wait_line(rf"^- {svc} a3 ", 1.0) is not None,
          f"CLI deregister removes a3 at once ({time.monotonic() - t:.2f} s)")

    # The registry restarts while a4's announcer runs: the watcher keeps its
    # list meanwhile, and a4's keep-alives resume on the restored lease.
    a4 = announce("a4")
    require(watcher.wait_line(rf"^\+ {svc} a4 ", 5) is not None,
            "watcher hears a4")
    kill9(reg)
    check(watcher.wait_line(r"^! .*keeping the last list", 5) is not None,
          "watcher reports the outage and keeps its list")
    time.sleep(0.5)  # the registry stays down for a third of a TTL
    reg, port2 = start_registry(data, port=port)
    check(port2 == port, "registry restarted on the same port")
    check(watcher.wait_line(r"^# reconnected", 10) is not None,
          "watcher reconnects")
    check(watcher.wait_line(rf"^- {svc} a4 ", 4.5) is None,
          "a4 survives the restart (keep-alive on the restored lease)")
    out = subprocess.run([ARGS.cli, "registry", "ls", svc, f"--registry={url}"],
                         capture_output=True, text=True, timeout=10)
    check(re.search(rf"^{re.escape(svc)}\s+a4\s", out.stdout, re.M)
          is not None, "ls shows a4 after the restart")
    a4.signal(signal.SIGTERM)
    check(watcher.wait_line(rf"^- {svc} a4 ", 2) is not None,
          "a4 leaves on graceful stop")
    a4.wait()
    watcher.signal(signal.SIGINT)
    check(watcher.wait() == 0, "watch exits 0 on Ctrl-C")
    reg.signal(signal.SIGTERM)
    reg.wait()


def open_watch(s, service, from_revision=0):
    """A Watch and its first event, retried while the watcher slots (freed
    a moment after a client cancels) are full."""
    deadline = time.monotonic() + 10
    while True:
        w = Watch(s, service, from_revision)
        ev = w.next(5)
        if ev is not None:
            return w, ev
        w.cancel()
        if time.monotonic() > deadline:
            raise AssertionError(f"no watcher slot: {w.error}")
        time.sleep(0.05)


def read_events(w, n, timeout=5):
    evs = []
    for _ in range(n):
        ev = w.next(timeout)
        if ev is None:
            break
        evs.append(ev)
    return evs


def case_resume():
    data = os.path.join(TMP, "resume")
    reg, port = start_registry(data, extra=["--history=16",
                                            "--max_watchers=2",
                                            "--watch_heartbeat_ms=300"])
    s, ch = stub(port)
    svc = "resume.svc"
    register(s, svc, "z")
    w = Watch(s, svc)
    ev = w.next()
    require(ev is not None and ev.type == pb.WatchEvent.SNAPSHOT and
            ev.reason == "initial" and [i.id for i in ev.instances] == ["z"],
            "Watch from 0 starts with a snapshot")
    register(s, svc, "a")
    register(s, svc, "b")
    evs = read_events(w, 2)
    require([(e.type, e.instance.id) for e in evs] ==
            [(pb.WatchEvent.PUT, "a"), (pb.WatchEvent.PUT, "b")],
            "live PUT events")
    last = evs[-1].revision
    w.cancel()
    wait_until(lambda: w.next(0.1) is None or w.error is not None, 5,
               "the watch to end")

    # Missed while disconnected.
    register(s, svc, "c")
    s.Deregister(pb.DeregisterRequest(service=svc, id="a"), timeout=5)
    register(s, "other.svc", "x")
    register(s, svc, "d", ttl_ms=60000)
    w = Watch(s, svc, from_revision=last)
    evs = read_events(w, 3)
    got = [(e.type, e.instance.id, e.revision, e.reason) for e in evs]
    want = [(pb.WatchEvent.PUT, "c", last + 1, ""),
            (pb.WatchEvent.DELETE, "a", last + 2, "deregistered"),
            (pb.WatchEvent.PUT, "d", last + 4, "")]
    check(got == want, f"resume from {last} gets exactly what it missed: "
          f"{got}")
    check(evs and evs[1].instance.address == "127.0.0.1:9",
          "a DELETE carries the instance as it was")
    ev = w.next(0.25)
    check(ev is None, "and nothing more")
    # An idle stream gets a heartbeat: PROGRESS at the current revision.
    ev = w.next(2)
    check(ev is not None and ev.type == pb.WatchEvent.PROGRESS and
          ev.revision == last + 4, "an idle watch gets PROGRESS heartbeats")
    w.cancel()
    head = last + 4
    w = Watch(s, svc, from_revision=head)
    ev = w.next()
    check(ev is not None and ev.type == pb.WatchEvent.PROGRESS and
          ev.revision == head, "resume with nothing new: PROGRESS")
    w.cancel()

    # Older than the history (16 events): a snapshot, never a gap.
    for i in range(20):
        register(s, "churn.svc", f"c{i}")
    w = Watch(s, svc, from_revision=last)
    ev = w.next()
    ids, res = resolve_ids(s, svc)
    check(ev is not None and ev.type == pb.WatchEvent.SNAPSHOT and
          ev.reason == "resync" and {i.id for i in ev.instances} == ids and
          ev.revision == res.revision,
          "resume from before the history gets a resync snapshot")

    # Watcher limit: w is one of 2.
    w2 = Watch(s, svc)
    require(w2.next() is not None, "second watcher served")
    code, details = code_of(lambda: list(s.Watch(
        pb.WatchRequest(service=svc), timeout=5)))
    check(code == grpc.StatusCode.RESOURCE_EXHAUSTED and
          "too many watchers" in details,
          f"third watcher refused: {code} {details}")
    w2.cancel()

    w3, _ = open_watch(s, svc)
    check(True, "a freed slot serves a new watcher")
    w3.cancel()
    # Expiry is heard by watchers, with reason "expired".
    w.cancel()
    w, _ = open_watch(s, svc)
    register(s, svc, "short", ttl_ms=300)
    evs = read_events(w, 2, timeout=3)
    check(len(evs) == 2 and evs[1].type == pb.WatchEvent.DELETE and
          evs[1].reason == "expired" and evs[1].instance.id == "short",
          "lease expiry reaches watchers as DELETE 'expired'")
    w.cancel()
    ch.close()
    # Graceful stop ends watchers with UNAVAILABLE.
    s, ch = stub(port)
    w, _ = open_watch(s, svc)
    reg.signal(signal.SIGTERM)
    end = w.next(5)
    wait_until(lambda: w.error is not None, 5, "the watch to end")
    check(end is None and w.error.code() == grpc.StatusCode.UNAVAILABLE,
          "shutdown ends watches with UNAVAILABLE")
    check(reg.wait() == 0, "registry exits 0")
    ch.close()


def case_badinput():
    data = os.path.join(TMP, "bad")
    reg, port = start_registry(data, extra=["--max_instances=3"])
    s, ch = stub(port)
    register(s, "good.svc", "g1", labels=[pb.Label(key="k", value="v")])
    _, before = resolve_ids(s, "")
    C = grpc.StatusCode
    long_name = "s" * 129
    huge = "x" * 100000

    def reg_req(inst=None, ttl_ms=1000, permanent=False, **kw):
        if inst is None:
            inst = instance("svc", "i1", **kw)
        return lambda: s.Register(pb.RegisterRequest(
            instance=inst, ttl_ms=ttl_ms, permanent=permanent), timeout=5)

    cases = [
        ("Register without instance",
         lambda: s.Register(pb.RegisterRequest(ttl_ms=1000), timeout=5),
         C.INVALID_ARGUMENT, "instance is missing"),
        ("empty service", reg_req(instance("", "i")), C.INVALID_ARGUMENT,
         "service name is empty"),
        ("over-long service", reg_req(instance(long_name, "i")),
         C.INVALID_ARGUMENT, "longer than 128"),
        ("100 KB service", reg_req(instance(huge, "i")), C.INVALID_ARGUMENT,
         "longer than 128"),
        ("service with a slash", reg_req(instance("a/b", "i")),
         C.INVALID_ARGUMENT, "[A-Za-z0-9._-]"),
        ("empty id", reg_req(instance("svc", "")), C.INVALID_ARGUMENT,
         "instance id is empty"),
        ("over-long id", reg_req(instance("svc", long_name)),
         C.INVALID_ARGUMENT, "instance id is longer"),
        ("address without port", reg_req(instance("svc", "i", "nohost")),
         C.INVALID_ARGUMENT, "malformed"),
        ("port 0", reg_req(instance("svc", "i", "h:0")), C.INVALID_ARGUMENT,
         "port out of range"),
        ("port 70000", reg_req(instance("svc", "i", "h:70000")),
         C.INVALID_ARGUMENT, "port out of range"),
        ("huge metadata (label value)",
         reg_req(instance("svc", "i", labels=[pb.Label(key="k",
                                                      value=huge)])),
         C.INVALID_ARGUMENT, "value longer than 256"),
        ("too many labels",
         reg_req(instance("svc", "i", labels=[pb.Label(key=f"k{i}", value="v")
                                              for i in range(17)])),
         C.INVALID_ARGUMENT, "more than 16 labels"),
        ("weight too big", reg_req(instance("svc", "i", weight=2000000)),
         C.INVALID_ARGUMENT, "weight 2000000 is above"),
        ("TTL of zero", reg_req(ttl_ms=0), C.INVALID_ARGUMENT,
         "ttl_ms 0 out of range"),
        ("absurd TTL", reg_req(ttl_ms=10**15), C.INVALID_ARGUMENT,
         "out of range"),
        ("negative TTL", reg_req(ttl_ms=-5), C.INVALID_ARGUMENT,
         "out of range"),
        ("permanent with a TTL", reg_req(ttl_ms=1000, permanent=True),
         C.INVALID_ARGUMENT, "must be 0 for a permanent"),
        ("KeepAlive of an unknown lease",
         lambda: s.KeepAlive(pb.KeepAliveRequest(lease_id=424242), timeout=5),
         C.NOT_FOUND, "lease 424242 not found"),
        ("KeepAlive of lease 0",
         lambda: s.KeepAlive(pb.KeepAliveRequest(lease_id=0), timeout=5),
         C.INVALID_ARGUMENT, "lease_id must be positive"),
        ("Deregister of a missing instance",
         lambda: s.Deregister(pb.DeregisterRequest(service="good.svc",
                                                   id="nope"), timeout=5),
         C.NOT_FOUND, "no instance 'nope'"),
        ("Deregister with an empty name",
         lambda: s.Deregister(pb.DeregisterRequest(service="", id="x"),
                              timeout=5),
         C.INVALID_ARGUMENT, "service name is empty"),
        ("Resolve of a bad name",
         lambda: s.Resolve(pb.ResolveRequest(service="a b"), timeout=5),
         C.INVALID_ARGUMENT, "may only hold"),
        ("Watch from a future revision",
         lambda: list(s.Watch(pb.WatchRequest(service="good.svc",
                                              from_revision=10**9),
                              timeout=5)),
         C.OUT_OF_RANGE, "ahead of the registry"),
        ("Watch from a negative revision",
         lambda: list(s.Watch(pb.WatchRequest(service="good.svc",
                                              from_revision=-1), timeout=5)),
         C.INVALID_ARGUMENT, "negative"),
        ("Watch of a bad name",
         lambda: list(s.Watch(pb.WatchRequest(service=long_name),
                              timeout=5)),
         C.INVALID_ARGUMENT, "longer than 128"),
    ]
    for what, fn, want, text in cases:
        code, details = code_of(fn)
        check(code == want and text in details,
              f"{what}: {code.name} '{details[:90]}'")
        # The next normal call still works, and nothing stored changed.
        _, now = resolve_ids(s, "")
        check(now == before, f"  ...state unharmed after: {what}")
    register(s, "good.svc", "g2")
    register(s, "good.svc", "g3")
    code, details = code_of(lambda: register(s, "good.svc", "g4"))
    check(code == C.RESOURCE_EXHAUSTED and "full" in details,
          f"a registry at --max_instances refuses a new instance: {details}")
    register(s, "good.svc", "g3", address="127.0.0.1:10")  # replace: fine
    ch.close()
    reg.signal(signal.SIGTERM)
    check(reg.wait() == 0, "registry exits 0")


def cli(*args, env=None, timeout=15):
    return subprocess.run([ARGS.cli, *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def cli_session(url, bad_service, stop_backend):
    """The CLI's commands, messages and exit codes against one backend at
    url (registry:// or etcd://): the same assertions for both. A watch
    runs throughout and must see each change live; stop_backend() takes
    the backend away for the last checks."""
    r = cli("--help")
    check(r.returncode == 0 and "h2rpc registry <command>" in r.stdout,
          "--help prints usage, exit 0")
    r = cli()
    check(r.returncode == 2 and "usage" in r.stderr, "no arguments: exit 2")
    r = cli("registry", "ls", "--registry=http://x:1")
    check(r.returncode == 2 and "bad --registry" in r.stderr,
          f"bad registry URL: exit 2 ({r.stderr.strip()})")
    env = dict(os.environ)
    env.pop("H2RPC_REGISTRY", None)
    r = cli("registry", "ls", env=env)
    check(r.returncode == 2 and "no registry" in r.stderr,
          "no registry given: exit 2")
    r = cli("registry", "frob", f"--registry={url}")
    check(r.returncode == 2 and "unknown command" in r.stderr,
          "unknown command: exit 2")
    r = cli("registry", "register", "svc", f"--registry={url}")
    check(r.returncode == 2, "register without ID ADDRESS: exit 2")
    r = cli("registry", "register", "svc", "i", "h:1", "--weight=x",
            f"--registry={url}")
    check(r.returncode == 2 and "--weight" in r.stderr, "bad --weight: exit 2")
    r = cli("registry", "ls", "--weight=3", f"--registry={url}")
    check(r.returncode == 2, "--weight on ls: exit 2")

    watcher = Proc([ARGS.cli, "registry", "watch", "cli.svc",
                    f"--registry={url}"], "watch")
    require(watcher.wait_line(r"^# cli\.svc: 0 instance", 10) is not None,
            "watch starts with the (empty) list")
    r = cli("registry", "register", "cli.svc", "i1", "127.0.0.1:5001",
            "--weight=5", "--zone=eu", "--version", "v2", f"--registry={url}")
    check(r.returncode == 0 and "registered cli.svc/i1" in r.stdout,
          f"register: exit 0 ({r.stderr.strip()})")
    check(watcher.wait_line(r"^\+ cli\.svc i1 127\.0\.0\.1:5001 weight=5 "
                            r"zone=eu version=v2$", 5) is not None,
          "watch sees i1 arrive, live")
    r = cli("registry", "register", "cli.svc", "i2", "127.0.0.1:5002",
            "--ttl_ms=60000", f"--registry={url}")
    check(r.returncode == 0 and "nothing renews" in r.stderr,
          "register with a lease warns that nothing renews it")
    check(watcher.wait_line(r"^\+ cli\.svc i2 127\.0\.0\.1:5002 ", 5)
          is not None, "watch sees i2 arrive")
    env["H2RPC_REGISTRY"] = url
    r = cli("registry", "ls", "cli.svc", env=env)
    rows = [l.split() for l in r.stdout.splitlines()[1:]]
    check(r.returncode == 0 and
          ["cli.svc", "i1", "127.0.0.1:5001", "5", "eu", "v2", "-"] in rows and
          any(x[:2] == ["cli.svc", "i2"] and x[6].endswith("ms") and
              0 < int(x[6][:-2]) <= 60000 for x in rows) and
          len(rows) == 2 and "2 instance(s)" in r.stderr,
          f"ls (H2RPC_REGISTRY) lists both: {rows}")
    r = cli("registry", "register", "cli.svc", "i1", "127.0.0.1:5011",
            "--weight=5", "--zone=eu", "--version=v2", env=env)
    check(r.returncode == 0 and
          watcher.wait_line(r"^~ cli\.svc i1 127\.0\.0\.1:5011 ", 5)
          is not None, "register again replaces i1; watch shows the change")
    r = cli("registry", "register", "cli.svc", "i3", "nohost", env=env)
    check(r.returncode == 1 and "INVALID_ARGUMENT" in r.stderr and
          "nohost" in r.stderr, f"refused register: exit 1 "
          f"({r.stderr.strip()})")
    r = cli("registry", "deregister", "cli.svc", "i1", env=env)
    check(r.returncode == 0 and "deregistered cli.svc/i1" in r.stdout,
          "deregister: exit 0")
    check(watcher.wait_line(r"^- cli\.svc i1 127\.0\.0\.1:5011 ", 5)
          is not None, "watch sees i1 leave, live")
    r = cli("registry", "deregister", "cli.svc", "i1", env=env)
    check(r.returncode == 1 and "NOT_FOUND" in r.stderr and "'i1'" in r.stderr,
          f"deregister of a missing instance: exit 1 ({r.stderr.strip()})")
    r = cli("registry", "register", "other.svc", "o1", "127.0.0.1:5100",
            env=env)
    check(r.returncode == 0, "register in a second service")
    r = cli("registry", "ls", env=env)
    rows = [l.split()[:2] for l in r.stdout.splitlines()[1:]]
    check(r.returncode == 0 and rows == [["cli.svc", "i2"],
                                          ["other.svc", "o1"]],
          f"ls of every service: {rows}")
    r = cli("registry", "ls", "cli.svc", env=env)
    check(r.returncode == 0 and len(r.stdout.splitlines()) == 2 and
          "i1" not in r.stdout, "ls no longer shows i1")
    r = cli("registry", "watch", bad_service, env=env)
    check(r.returncode == 2 and "INVALID_ARGUMENT" in r.stderr,
          f"watch of a bad service name: exit 2 ({r.stderr.strip()})")
    check(watcher.p.poll() is None, "watch still running")
    watcher.signal(signal.SIGINT)
    check(watcher.wait() == 0, "watch exits 0 on Ctrl-C")
    check(watcher.wait_line(r"^[-+~] ", 0.2) is None,
          "watch printed no change beyond the ones made")
    stop_backend()
    t = time.monotonic()
    r = cli("registry", "ls", "--timeout_ms=2000", env=env)
    check(r.returncode == 1 and "UNAVAILABLE" in r.stderr and
          time.monotonic() - t < 5,
          f"unreachable backend: exit 1 ({r.stderr.strip()})")


def case_cli():
    data = os.path.join(TMP, "cli")
    reg, port = start_registry(data)

    def stop():
        reg.signal(signal.SIGTERM)
        reg.wait()
    cli_session(f"registry://127.0.0.1:{port}", "bad name", stop)


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_etcd():
    """A one-member etcd on 127.0.0.1 with OS-chosen ports and a temporary
    data directory; returns its Proc and client port once it answers."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)

    def die_with_parent():
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    cport, pport = free_port(), free_port()
    client, peer = f"http://127.0.0.1:{cport}", f"http://127.0.0.1:{pport}"
    args = [ETCD, "--name", "t", "--data-dir", os.path.join(TMP, "etcd"),
            "--listen-client-urls", client, "--advertise-client-urls", client,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"t={peer}", "--heartbeat-interval", "50",
            "--election-timeout", "500", "--log-level", "warn"]
    p = Proc(args, "etcd", preexec_fn=die_with_parent)
    env = dict(os.environ, ETCDCTL_API="3")

    def healthy():
        r = subprocess.run([ETCDCTL, f"--endpoints=127.0.0.1:{cport}",
                            "--command-timeout=1s", "endpoint", "health"],
                           capture_output=True, env=env, timeout=10)
        return r.returncode == 0 or p.p.poll() is not None
    wait_until(healthy, 20, "etcd to answer")
    require(p.p.poll() is None, "etcd started")
    return p, cport


def case_cli_etcd():
    etcd, port = start_etcd()

    def stop():
        etcd.signal(signal.SIGTERM)
        etcd.wait()
    # etcd keys may hold a space; '/' is what its key layout refuses.
    cli_session(f"etcd://127.0.0.1:{port}", "a/b", stop)


def case_grpcio():
    """A stock grpcio client, its stubs generated by grpc_tools from
    registry.proto at run time, calls every method of h2rpc-registry and
    checks each answer field by field."""
    data = os.path.join(TMP, "grpcio")
    reg, port = start_registry(data)
    ch = grpc.insecure_channel(f"127.0.0.1:{port}")
    grpc.channel_ready_future(ch).result(timeout=5)
    s = pb_grpc.RegistryStub(ch)
    svc = "interop.Echo"

    # Watch from 0 first: an empty SNAPSHOT, then every change live.
    w = Watch(s, svc)
    ev = w.next()
    require(ev is not None and ev.type == pb.WatchEvent.SNAPSHOT and
            ev.reason == "initial" and len(ev.instances) == 0 and
            ev.revision == 0, f"Watch: initial empty snapshot ({ev})")

    # Register with a lease, labels and every field; with_call gives the
    # trailing metadata too: a complete gRPC exchange.
    req = pb.RegisterRequest(instance=pb.Instance(
        service=svc, id="e1", address="127.0.0.1:6001", weight=7,
        zone="eu-1", version="1.2.3",
        labels=[pb.Label(key="role", value="primary"),
                pb.Label(key="dc/rack", value="r 12")]), ttl_ms=30000)
    resp, call = s.Register.with_call(req, timeout=5,
                                      metadata=[("x-test", "grpcio")])
    check(call.code() == grpc.StatusCode.OK and resp.revision == 1 and
          resp.lease_id == 1 and resp.ttl_ms == 30000,
          f"Register: lease {resp.lease_id}, revision {resp.revision}, "
          f"ttl {resp.ttl_ms}")
    ev = w.next()
    check(ev is not None and ev.type == pb.WatchEvent.PUT and
          ev.revision == 1 and ev.instance.id == "e1" and
          ev.instance.address == "127.0.0.1:6001" and
          ev.instance.lease_id == 1,
          f"Watch: the first change on an empty registry is a PUT ({ev})")
    perm = s.Register(pb.RegisterRequest(instance=pb.Instance(
        service=svc, id="e2", address="[::1]:6002"), permanent=True),
        timeout=5)
    check(perm.lease_id == 0 and perm.revision == 2,
          "Register permanent: no lease, revision 2")
    ev = w.next()
    check(ev is not None and ev.type == pb.WatchEvent.PUT and
          ev.instance.id == "e2" and ev.revision == 2, "Watch: PUT e2 live")

    r = s.Resolve(pb.ResolveRequest(service=svc), timeout=5)
    got = {i.id: i for i in r.instances}
    e1 = got.get("e1")
    check(r.revision == 2 and sorted(got) == ["e1", "e2"] and
          e1 is not None and e1.weight == 7 and e1.zone == "eu-1" and
          e1.version == "1.2.3" and
          [(l.key, l.value) for l in e1.labels] ==
          [("role", "primary"), ("dc/rack", "r 12")] and
          e1.lease_id == 1 and e1.ttl_ms == 30000 and
          0 < e1.lease_remaining_ms <= 30000 and e1.create_revision == 1 and
          e1.mod_revision == 1 and got["e2"].lease_id == 0 and
          got["e2"].address == "[::1]:6002",
          "Resolve: both instances with every field")
    r = s.Resolve(pb.ResolveRequest(service=""), timeout=5)
    check([i.id for i in r.instances] == ["e1", "e2"],
          "Resolve of every service")

    k = s.KeepAlive(pb.KeepAliveRequest(lease_id=1), timeout=5)
    check(k.ttl_ms == 30000 and k.revision == 2,
          "KeepAlive: the lease runs its full TTL again")
    d = s.Deregister(pb.DeregisterRequest(service=svc, id="e1"), timeout=5)
    check(d.revision == 3, "Deregister: revision 3")
    ev = w.next()
    check(ev is not None and ev.type == pb.WatchEvent.DELETE and
          ev.revision == 3 and ev.reason == "deregistered" and
          ev.instance.address == "127.0.0.1:6001", "Watch: DELETE e1 live")
    code, details = code_of(lambda: s.KeepAlive(
        pb.KeepAliveRequest(lease_id=1), timeout=5))
    check(code == grpc.StatusCode.NOT_FOUND and "lease 1 not found" in details,
          f"KeepAlive of the deregistered lease: {code.name} '{details}'")
    w.cancel()

    # Resume from revision 1: exactly what came after, then live.
    w = Watch(s, svc, from_revision=1)
    evs = read_events(w, 2)
    check([(e.type, e.instance.id, e.revision) for e in evs] ==
          [(pb.WatchEvent.PUT, "e2", 2), (pb.WatchEvent.DELETE, "e1", 3)],
          "Watch resumed from revision 1 gets revisions 2 and 3")
    w.cancel()
    # The future aio API of grpcio too: one call, so both stacks are shown.
    import asyncio

    async def aio_resolve():
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ach:
            return await pb_grpc.RegistryStub(ach).Resolve(
                pb.ResolveRequest(service=svc), timeout=5)
    r = asyncio.run(aio_resolve())
    check([i.id for i in r.instances] == ["e2"] and r.revision == 3,
          "grpc.aio Resolve")
    ch.close()
    reg.signal(signal.SIGTERM)
    check(reg.wait() == 0, "registry exits 0")


CASES = {"crash": case_crash, "lease": case_lease, "resume": case_resume,
         "badinput": case_badinput, "cli": case_cli,
         "cli_etcd": case_cli_etcd, "grpcio": case_grpcio}
ETCD, ETCDCTL = "/usr/bin/etcd", "/usr/bin/etcdctl"


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("case", choices=sorted(CASES))
    ap.add_argument("--registry", required=True)
    ap.add_argument("--cli", required=True)
    ap.add_argument("--announce", required=True)
    ap.add_argument("--idl", required=True)
    ARGS = ap.parse_args()
    if ARGS.case == "cli_etcd" and not (os.access(ETCD, os.X_OK) and
                                        os.access(ETCDCTL, os.X_OK)):
        print(f"SKIP: {ETCD} or {ETCDCTL} not installed")
        sys.exit(77)
    try:
        load_stubs()
        CASES[ARGS.case]()
        # Each case stops what it started: prove it.
        left = [p.name for p in PROCS if p.p.poll() is None]
        check(not left, f"no process left running ({left})")
    except AssertionError as e:
        FAILURES.append(str(e))
        print("FAIL " + str(e), flush=True)
    finally:
        for p in PROCS:
            if p.p.poll() is None:
                p.p.kill()
                p.p.wait()
        shutil.rmtree(TMP, ignore_errors=True)
    if FAILURES:
        for p in PROCS:
            if p.err:
                print(f"--- stderr of {p.name}:\n" + "\n".join(p.err[-20:]))
        print(f"{len(FAILURES)} failure(s)")
        sys.exit(1)
    print("all passed")


if __name__ == "__main__":
    main()
