#!/usr/bin/python3
"""Runs one interop test case between a server and a client program.

    run_pair.py --server CMD [ARG...] --client CMD [ARG...] --case NAME
                [--timeout S] [--startup-timeout S] [--kill-grace S]

1. Starts the server command with "--port=0" appended (on 127.0.0.1; both
   h2rpc's interop_server and grpc_server.py bind 127.0.0.1) and waits, at
   most --startup-timeout seconds, for a stdout line that is exactly
   "PORT <n>" (other lines are passed through and ignored).
2. Runs the client command with "--server_host=127.0.0.1 --server_port=<n>
   --test_case=<NAME>" appended, for at most what remains of --timeout.
3. Stops the server by PID: SIGTERM, then SIGKILL (to the process group the
   driver created for it) after --kill-grace seconds. The client gets the
   same treatment (SIGTERM to its group, SIGKILL 1 s later) on a timeout.

Each command's tokens run up to the next of this driver's own options
(--server, --client, --case, --timeout, --startup-timeout, --kill-grace, in
either "--opt V" or "--opt=V" form), so the commands themselves may carry
other options (e.g. "--server interop_server --threads=2"). The server and
client output is echoed with "[server]" / "[client]" prefixes, followed by a
summary with timings.

Exit status: the client's status (0 = pass; 128+N if it died of signal N),
except:
  124  the client did not finish within --timeout (it is killed);
  125  harness failure: the server could not be started, exited or timed out
       before printing its PORT line, or died while the client ran;
  2    usage error.
"""

import ctypes
import os
import re
import signal
import subprocess
import sys
import threading
import time

DRIVER_OPTIONS = ("--server", "--client", "--case", "--timeout",
                  "--startup-timeout", "--kill-grace")
PORT_LINE = re.compile(r"^PORT (\d+)$")

EXIT_CLIENT_TIMEOUT = 124
EXIT_HARNESS = 125


def log(message):
    sys.stdout.write("[run_pair] %s\n" % message)
    sys.stdout.flush()


def usage(message):
    sys.stderr.write("run_pair.py: %s\n" % message)
    sys.stderr.write(__doc__.split("\n\n")[1] + "\n")
    sys.exit(2)


def parse_args(argv):
    """Splits argv into the driver's options and the two commands."""
    opts = {"server": [], "client": [], "case": None, "timeout": "45",
            "startup-timeout": "15", "kill-grace": "5"}
    seen = set()
    current = None  # the command being collected
    i = 0
    while i < len(argv):
        token = argv[i]
        name, eq, value = token.partition("=")
        if name in DRIVER_OPTIONS:
            key = name[2:]
            if key in ("server", "client"):
                if eq:
                    usage("%s takes a command, not =VALUE" % name)
                if key in seen:
                    usage("%s given twice" % name)
                seen.add(key)
                current = opts[key]
                i += 1
                continue
            if not eq:
                if i + 1 >= len(argv):
                    usage("%s needs a value" % name)
                value = argv[i + 1]
                i += 1
            opts[key] = value
            current = None
            i += 1
            continue
        if current is None:
            usage("unexpected argument %r" % token)
        current.append(token)
        i += 1
    if not opts["server"]:
        usage("--server CMD is required")
    if not opts["client"]:
        usage("--client CMD is required")
    if not opts["case"]:
        usage("--case NAME is required")
    for key in ("timeout", "startup-timeout", "kill-grace"):
        try:
            opts[key] = float(opts[key])
        except ValueError:
            usage("--%s: not a number: %r" % (key, opts[key]))
        if opts[key] <= 0:
            usage("--%s must be positive" % key)
    return opts


class Interrupted(Exception):
    pass


def on_signal(signum, frame):
    raise Interrupted(signum)


_libc = None
try:
    _libc = ctypes.CDLL(None, use_errno=True)
except OSError:
    pass


def _die_with_parent():
    # Runs in the child between fork and exec: if this driver dies abruptly
    # (e.g. SIGKILL), the server gets SIGTERM instead of lingering.
    # PR_SET_PDEATHSIG = 1 (Linux).
    if _libc is not None and sys.platform.startswith("linux"):
        _libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)


class Child(object):
    """A child process in its own process group, stdout+stderr echoed with a
    prefix by a reader thread. on_line(line) sees each line first."""

    def __init__(self, name, argv, on_line=None, preexec_fn=None):
        self.name = name
        self.argv = argv
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT,
                                     start_new_session=True,
                                     preexec_fn=preexec_fn)
        self.pid = self.proc.pid
        self._on_line = on_line
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in iter(self.proc.stdout.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            sys.stdout.write("[%s] %s\n" % (self.name, line))
            sys.stdout.flush()
            if self._on_line is not None:
                self._on_line(line)
        self.proc.stdout.close()

    def exited(self):
        """True once the child has exited. Does not reap it: until reaped, its
        PID (and so its process group id) cannot be reused by an unrelated
        process, which keeps signalling them safe."""
        if self.proc.returncode is not None:
            return True
        try:
            info = os.waitid(os.P_PID, self.pid,
                             os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True
        return info is not None

    def wait_exit(self, timeout):
        """Waits up to `timeout` seconds for the child to exit (unreaped);
        returns whether it did."""
        end = time.monotonic() + timeout
        while not self.exited():
            if time.monotonic() >= end:
                return False
            time.sleep(0.02)
        return True

    def signal(self, signum, group=False):
        """Sends signum to the child's PID, or with group=True to the process
        group this driver created for it (group id == the child's PID).
        Only before the child is reaped (see exited())."""
        if self.proc.returncode is not None:
            return
        try:
            if group:
                os.killpg(self.pid, signum)
            else:
                os.kill(self.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    def reap(self):
        """Kills whatever the child left running in its process group (its
        own helpers, if any), then reaps the child. Returns its status."""
        self.signal(signal.SIGKILL, group=True)
        self.proc.wait()
        self.reader.join(2)
        return self.proc.returncode

    def stop(self, grace, group=False):
        """SIGTERM (to the PID, or with group=True to its process group),
        then SIGKILL to its process group after `grace` seconds; reaps it.
        Returns (exit status, how it was stopped)."""
        if self.exited():
            how = "had already exited"
        else:
            self.signal(signal.SIGTERM, group=group)
            if self.wait_exit(grace):
                how = "stopped by SIGTERM"
            else:
                how = "killed by SIGKILL after %gs" % grace
        return self.reap(), how


def describe_status(status):
    if status is None:
        return "still running"
    if status < 0:
        try:
            return "killed by %s" % signal.Signals(-status).name
        except ValueError:
            return "killed by signal %d" % -status
    return "exit status %d" % status


def exit_code_for(status):
    return 128 - status if status < 0 else status


def run(opts):
    """Runs the pair; returns (exit code, one-line verdict)."""
    case = opts["case"]
    timeout = opts["timeout"]
    startup_timeout = min(opts["startup-timeout"], timeout)
    t0 = time.monotonic()
    deadline = t0 + timeout

    port_ready = threading.Event()
    port_box = []

    def watch_server(line):
        if not port_box:
            m = PORT_LINE.match(line.strip())
            if m:
                port_box.append(int(m.group(1)))
                port_ready.set()

    server_argv = opts["server"] + ["--port=0"]
    log("case %s" % case)
    log("server: %s" % " ".join(server_argv))
    try:
        server = Child("server", server_argv, on_line=watch_server,
                       preexec_fn=_die_with_parent)
    except OSError as e:
        return EXIT_HARNESS, "cannot start the server: %s" % e
    client = None
    try:
        # Wait for "PORT <n>", the server's exit, or the startup timeout.
        startup_deadline = t0 + startup_timeout
        while not port_ready.wait(0.02):
            if server.exited():
                server.reader.join(2)  # it may have printed the line last
                if port_ready.is_set():
                    break
                return EXIT_HARNESS, (
                    "server exited (%s) before printing a 'PORT <n>' line" %
                    describe_status(server.reap()))
            if time.monotonic() >= startup_deadline:
                return EXIT_HARNESS, (
                    "server printed no 'PORT <n>' line within %gs" %
                    startup_timeout)
        port = port_box[0]
        t_ready = time.monotonic()
        if not 0 < port < 65536:
            return EXIT_HARNESS, "server announced an invalid port %d" % port
        log("server pid %d ready on 127.0.0.1:%d after %.3fs" %
            (server.pid, port, t_ready - t0))

        client_argv = opts["client"] + [
            "--server_host=127.0.0.1", "--server_port=%d" % port,
            "--test_case=%s" % case
        ]
        log("client: %s" % " ".join(client_argv))
        try:
            client = Child("client", client_argv)
        except OSError as e:
            return EXIT_HARNESS, "cannot start the client: %s" % e
        finished = client.wait_exit(max(deadline - time.monotonic(), 0))
        t_client = time.monotonic()
        if not finished:
            client.stop(1, group=True)
            return EXIT_CLIENT_TIMEOUT, (
                "client did not finish within the %gs timeout (killed after "
                "%.3fs)" % (timeout, t_client - t_ready))
        status = client.reap()
        log("client finished in %.3fs: %s" %
            (t_client - t_ready, describe_status(status)))
        if server.exited():
            server_status = describe_status(server.reap())
            if status == 0:
                return EXIT_HARNESS, (
                    "client passed, but the server exited while it ran (%s)" %
                    server_status)
            log("the server also exited while the client ran (%s)" %
                server_status)
        if status == 0:
            return 0, "client passed"
        return exit_code_for(status), "client failed (%s)" % (
            describe_status(status))
    finally:
        # Cleanup is bounded in time; do not let a second signal cut it short.
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
        if client is not None and client.proc.returncode is None:
            client.stop(1, group=True)
        if server.proc.returncode is None:
            server_status, how = server.stop(opts["kill-grace"])
            log("server %s (%s)" % (how, describe_status(server_status)))


def main(argv=None):
    opts = parse_args(sys.argv[1:] if argv is None else argv)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, on_signal)
    t0 = time.monotonic()
    try:
        code, verdict = run(opts)
    except Interrupted as e:
        code = 128 + e.args[0]
        verdict = "interrupted by %s; server and client stopped" % (
            signal.Signals(e.args[0]).name)
    log("%s %s: %s (exit %d, total %.3fs)" %
        ("PASS" if code == 0 else "FAIL", opts["case"], verdict, code,
         time.monotonic() - t0))
    return code


if __name__ == "__main__":
    sys.exit(main())
