#!/usr/bin/python3
"""TLS between h2rpc and grpcio, and TLS failures that must fail closed.

    tls_test.py INTEROP_SERVER INTEROP_CLIENT GRPC_SERVER_PY GRPC_CLIENT_PY

Generates its certificates (python3-cryptography) in a temporary directory:
a CA, a second CA nobody trusts, a server certificate for 127.0.0.1 and
localhost, an expired one, and a client certificate. Then, every server on
127.0.0.1 with an ephemeral port and every step bounded in time:

  interop over TLS  grpcio client -> h2rpc server, h2rpc client -> grpcio
                    server, h2rpc -> h2rpc, with unary and streaming cases;
                    mutual TLS both ways
  fails closed      wrong CA, expired certificate, wrong name, plaintext to
                    a TLS port, TLS to a plaintext port, no client
                    certificate for an mTLS server: each call fails with
                    UNAVAILABLE and the reason, and the server keeps serving
                    good clients

Exit 0 when every check holds.
"""

import datetime
import ipaddress
import os
import select
import signal
import subprocess
import sys
import tempfile
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SERVER, CLIENT = sys.argv[1:3]
# The grpcio peers run under this interpreter (the one with grpcio).
PY_SERVER, PY_CLIENT = [sys.executable, sys.argv[3]], [sys.executable,
                                                        sys.argv[4]]
STEP_TIMEOUT = 30
failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)


# ------------------------------------------------------------ certificates

def write_pem(path, data):
    with open(path, "wb") as f:
        f.write(data)


def make_key():
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def make_cert(subject, key, issuer_name, issuer_key, ca=False, sans=None,
              not_before=None, not_after=None, client=False):
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(
                   NameOID.COMMON_NAME, subject)]))
               .issuer_name(issuer_name)
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(not_before or now - datetime.timedelta(hours=1))
               .not_valid_after(not_after or now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None),
                              critical=True))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans),
                                        critical=False)
    if not ca:
        usage = (x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH if client
                 else x509.oid.ExtendedKeyUsageOID.SERVER_AUTH)
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]),
                                        critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def make_certs(d):
    files = {}

    def ca(name):
        key = make_key()
        cert = make_cert(name, key, x509.Name([x509.NameAttribute(
            NameOID.COMMON_NAME, name)]), key, ca=True)
        files[name] = os.path.join(d, name + ".pem")
        write_pem(files[name], cert.public_bytes(serialization.Encoding.PEM))
        return cert, key

    ca_cert, ca_key = ca("ca")
    ca("other_ca")
    sans = [x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    now = datetime.datetime.now(datetime.timezone.utc)
    leaves = {
        "server": dict(sans=sans),
        "expired": dict(sans=sans, not_before=now - datetime.timedelta(days=2),
                        not_after=now - datetime.timedelta(days=1)),
        "client": dict(client=True),
    }
    for name, kw in leaves.items():
        key = make_key()
        cert = make_cert(name, key, ca_cert.subject, ca_key, **kw)
        files[name] = os.path.join(d, name + ".pem")
        files[name + "_key"] = os.path.join(d, name + ".key")
        write_pem(files[name], cert.public_bytes(serialization.Encoding.PEM))
        write_pem(files[name + "_key"], key_pem(key))
    return files


# --------------------------------------------------------------- processes

def start_server(cmd):
    """Starts a server printing "PORT <n>"; returns (process, port)."""
    p = subprocess.Popen(cmd + ["--port=0"], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + STEP_TIMEOUT
    while time.monotonic() < deadline:
        ready, _, _ = select.select([p.stdout], [], [], 0.5)
        if not ready:
            if p.poll() is not None:
                break
            continue
        line = p.stdout.readline()
        if line.startswith("PORT "):
            return p, int(line.split()[1])
        if line == "":
            break
    stop(p)
    raise SystemExit("server did not start: %s" % " ".join(cmd))


def stop(p):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def run_client(cmd, port, case):
    """Runs a client; returns (exit status, its output)."""
    try:
        r = subprocess.run(cmd + ["--server_host=127.0.0.1",
                                  "--server_port=%d" % port,
                                  "--test_case=" + case],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=STEP_TIMEOUT)
        return r.returncode, r.stdout
    except subprocess.TimeoutExpired as e:
        return 124, (e.stdout or "") + "\n(timed out)"


def expect_pass(what, cmd, port, case):
    rc, out = run_client(cmd, port, case)
    check(rc == 0, "%s: %s passes" % (what, case))
    if rc != 0:
        print(out)


def expect_fail(what, cmd, port, reason):
    """A call fails with UNAVAILABLE, in bounded time, naming `reason`."""
    start = time.monotonic()
    rc, out = run_client(cmd, port, "empty_unary")
    took = time.monotonic() - start
    good = (rc not in (0, 124) and "UNAVAILABLE" in out and
            reason.lower() in out.lower())
    check(good, "%s: fails closed with UNAVAILABLE naming '%s' (%.1fs)" %
          (what, reason, took))
    if not good:
        print(out)


def main():
    with tempfile.TemporaryDirectory(prefix="h2rpc-tls-") as d:
        f = make_certs(d)
        tls_server = [SERVER, "--use_tls=true", "--tls_cert_file=" + f["server"],
                      "--tls_key_file=" + f["server_key"]]
        tls_client = [CLIENT, "--use_tls=true", "--ca_file=" + f["ca"]]
        py_client = PY_CLIENT + ["--use_tls=true", "--ca_file=" + f["ca"],
                     "--rpc_timeout=10", "--connect_timeout=10"]
        client_cert = ["--tls_cert_file=" + f["client"],
                       "--tls_key_file=" + f["client_key"]]
        cases = ["empty_unary", "large_unary", "client_streaming",
                 "server_streaming", "ping_pong"]
        servers = []
        try:
            # Interop over TLS, each direction.
            srv, port = start_server(tls_server)
            servers.append(srv)
            for case in cases:
                expect_pass("grpcio client -> h2rpc server (TLS)", py_client,
                            port, case)
                expect_pass("h2rpc client -> h2rpc server (TLS)", tls_client,
                            port, case)
            expect_pass("h2rpc client, name localhost", tls_client +
                        ["--server_host_override=localhost"], port, "ping_pong")

            # Failing closed against the good server; it keeps serving.
            expect_fail("untrusted CA", [CLIENT, "--use_tls=true",
                                         "--ca_file=" + f["other_ca"]],
                        port, "certificate verify failed")
            expect_fail("wrong name", tls_client +
                        ["--server_host_override=wrong.example"], port,
                        "certificate verify failed")
            expect_fail("plaintext client to the TLS port", [CLIENT], port,
                        "connection to 127.0.0.1")
            rc, out = run_client(PY_CLIENT + ["--use_tls=true",
                                  "--ca_file=" + f["other_ca"],
                                  "--connect_timeout=3"], port, "empty_unary")
            check(rc != 0, "grpcio client with an untrusted CA is refused")
            expect_pass("after the bad clients, the TLS server", tls_client,
                        port, "large_unary")

            py_srv, py_port = start_server(
                PY_SERVER + ["--use_tls=true", "--tls_cert_file=" + f["server"],
                 "--tls_key_file=" + f["server_key"]])
            servers.append(py_srv)
            for case in cases:
                expect_pass("h2rpc client -> grpcio server (TLS)", tls_client,
                            py_port, case)

            # An expired certificate.
            exp, exp_port = start_server(
                [SERVER, "--use_tls=true", "--tls_cert_file=" + f["expired"],
                 "--tls_key_file=" + f["expired_key"]])
            servers.append(exp)
            expect_fail("expired server certificate", tls_client, exp_port,
                        "certificate has expired")

            # TLS to a plaintext server.
            plain, plain_port = start_server([SERVER])
            servers.append(plain)
            expect_fail("TLS client to a plaintext port", tls_client,
                        plain_port, "TLS handshake failed")

            # Mutual TLS: h2rpc server, then grpcio server.
            for name, cmd in (("h2rpc", tls_server), ("grpcio", PY_SERVER + [
                    "--use_tls=true",
                    "--tls_cert_file=" + f["server"],
                    "--tls_key_file=" + f["server_key"]])):
                m, m_port = start_server(cmd + ["--tls_client_ca_file=" +
                                                f["ca"]])
                servers.append(m)
                expect_pass("h2rpc client with a certificate -> %s mTLS" % name,
                            tls_client + client_cert, m_port, "ping_pong")
                expect_pass("grpcio client with a certificate -> %s mTLS" %
                            name, py_client + client_cert, m_port,
                            "large_unary")
                expect_fail("no client certificate -> %s mTLS" % name,
                            tls_client, m_port, "TLS")
            # Files that cannot be loaded: a clear error at start-up.
            rc, out = run_client([CLIENT, "--use_tls=true",
                                  "--ca_file=" + os.path.join(d, "missing")],
                                 port, "empty_unary")
            check(rc != 0 and "cannot read" in out and "missing" in out,
                  "a missing CA file is named at channel creation")
            bad = subprocess.run([SERVER, "--port=0", "--use_tls=true",
                                  "--tls_cert_file=" + f["server"],
                                  "--tls_key_file=" + f["client_key"]],
                                 stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True,
                                 timeout=STEP_TIMEOUT)
            check(bad.returncode != 0 and "key values mismatch" in bad.stdout,
                  "a server whose key does not match its certificate "
                  "refuses to start")
        finally:
            for s in servers:
                stop(s)
            for s in servers:
                check(s.returncode == 0,
                      "server %s exited 0 on SIGTERM" % " ".join(s.args[:2]))
    if failures:
        print("%d check(s) failed" % len(failures))
        return 1
    print("all TLS checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
