#!/usr/bin/python3
"""grpcio's health client against an h2rpc server (grpc.health.v1.Health).

    health_test.py <interop_server> <grpc-proto root>

Starts the h2rpc interop_server on a free port (it prints "PORT <n>"), then,
with stubs grpc_tools generates from the grpc-proto copy of health.proto:
  - Check("") and Check("grpc.testing.TestService") answer SERVING;
  - Check of an unknown service fails with NOT_FOUND;
  - Watch("grpc.testing.TestService") sends SERVING first; Watch of an
    unknown service sends SERVICE_UNKNOWN and stays open;
  - SIGTERM (a graceful stop) turns the open Watch to NOT_SERVING before
    the server goes away.
Every wait has a deadline. Exit 0 on success.
"""
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading

import grpc
from grpc_tools import protoc


def main():
    server_bin, proto_root = sys.argv[1], sys.argv[2]
    # Generated from a copy at the top of a temporary folder: modules under
    # grpc/health/v1 would be shadowed by the grpc package itself. The proto
    # package (grpc.health.v1) and so the wire names stay the same.
    gen = tempfile.mkdtemp(prefix="h2rpc-health-")
    with open(os.path.join(proto_root, "grpc/health/v1/health.proto")) as f:
        text = f.read()
    with open(os.path.join(gen, "health.proto"), "w") as f:
        f.write(text)
    rc = protoc.main(["protoc", "-I" + gen, "--python_out=" + gen,
                      "--grpc_python_out=" + gen,
                      os.path.join(gen, "health.proto")])
    assert rc == 0, "protoc failed"
    sys.path.insert(0, gen)
    import health_pb2  # noqa: E402
    import health_pb2_grpc  # noqa: E402

    server = subprocess.Popen([server_bin, "--port=0"], stdout=subprocess.PIPE,
                              text=True)
    try:
        lines = queue.Queue()
        threading.Thread(target=lambda: [lines.put(l) for l in server.stdout],
                         daemon=True).start()
        port = None
        while port is None:
            line = lines.get(timeout=10)
            if line.startswith("PORT "):
                port = int(line.split()[1])
        channel = grpc.insecure_channel("127.0.0.1:%d" % port)
        stub = health_pb2_grpc.HealthStub(channel)
        Req = health_pb2.HealthCheckRequest
        S = health_pb2.HealthCheckResponse
        for svc in ("", "grpc.testing.TestService"):
            r = stub.Check(Req(service=svc), timeout=5)
            assert r.status == S.SERVING, (svc, r)
        try:
            stub.Check(Req(service="no.such.Service"), timeout=5)
            raise AssertionError("unknown service did not fail")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.NOT_FOUND, e
            assert "no.such.Service" in e.details(), e.details()

        unknown = stub.Watch(Req(service="no.such.Service"), timeout=10)
        assert next(unknown).status == S.SERVICE_UNKNOWN
        unknown.cancel()

        watch = stub.Watch(Req(service="grpc.testing.TestService"), timeout=20)
        assert next(watch).status == S.SERVING
        server.send_signal(signal.SIGTERM)
        assert next(watch).status == S.NOT_SERVING
        print("health: Check, Watch and the stop-time NOT_SERVING all work")
        channel.close()
        server.wait(timeout=15)
        return 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


if __name__ == "__main__":
    sys.exit(main())
