#!/usr/bin/python3
"""grpcio implementation of grpc.testing.TestService, the reference peer for
h2rpc's interop suite (see docs/interop.md).

    grpc_server.py [--port=N] [--host=127.0.0.1] [--use_tls=false]
                   [--tls_cert_file=PEM --tls_key_file=PEM]
                   [--tls_client_ca_file=PEM]

With --use_tls=true it serves TLS with the given certificate and key; a
client CA makes it require client certificates (mutual TLS).

Binds 127.0.0.1 (port 0, the default, lets the OS choose), then prints exactly
one line "PORT <n>" on stdout and flushes it; run_pair.py waits for that line.
Serves until SIGTERM or SIGINT, then stops (2 s grace) and exits 0.

Behaviour follows the server section of gRPC's doc/interop-test-descriptions.md:
EmptyCall, UnaryCall, StreamingOutputCall, StreamingInputCall, FullDuplexCall
and HalfDuplexCall, with Echo Status, Echo Metadata, interval_us and
CompressedResponse. Like gRPC's own Python interop server it does not implement
CacheableUnaryCall (it needs a caching proxy). UnimplementedCall is deliberately
left unimplemented, and grpc.testing.UnimplementedService is not registered, so
both answer UNIMPLEMENTED.

The Python stubs are generated at start-up into a temporary directory with
grpc_tools.protoc from the .proto files under $H2RPC_INTEROP_PROTO_DIR
(default /usr/share/grpc-proto). grpc_client.py imports load_stubs() from here.
"""

import argparse
import concurrent.futures
import os
import shutil
import signal
import sys
import tempfile
import threading
import time

import grpc

PROTO_DIR_ENV = "H2RPC_INTEROP_PROTO_DIR"
DEFAULT_PROTO_DIR = "/usr/share/grpc-proto"
PROTOS = (
    "grpc/testing/test.proto",
    "grpc/testing/messages.proto",
    "grpc/testing/empty.proto",
)

INITIAL_METADATA_KEY = "x-grpc-test-echo-initial"
TRAILING_METADATA_KEY = "x-grpc-test-echo-trailing-bin"


class Stubs(object):
    """The generated modules: .empty_pb2, .messages_pb2, .test_pb2_grpc."""


def load_stubs():
    """Generates and imports the grpc.testing Python modules.

    The generated code lives in package "grpc.testing" (from the proto file
    paths), which would clash with the installed grpcio package "grpc". Rather
    than rewriting the protos, the generated grpc/ directory is added to the
    search path of the already-imported grpc package (or of grpc.testing, if
    grpcio-testing happens to be installed). The temporary directory is removed
    once the modules are imported.
    """
    proto_dir = os.environ.get(PROTO_DIR_ENV) or DEFAULT_PROTO_DIR
    for proto in PROTOS:
        if not os.path.isfile(os.path.join(proto_dir, proto)):
            raise RuntimeError(
                "%s not found under %s (set %s to the grpc-proto root)"
                % (proto, proto_dir, PROTO_DIR_ENV))
    from grpc_tools import protoc
    import importlib
    # Well-known protos (google/protobuf/*.proto) ship inside grpc_tools; the
    # current test protos do not import any, but newer versions might.
    include_dirs = ["-I" + proto_dir]
    wkt_dir = os.path.join(os.path.dirname(protoc.__file__), "_proto")
    if os.path.isdir(wkt_dir):
        include_dirs.append("-I" + wkt_dir)
    out_dir = tempfile.mkdtemp(prefix="h2rpc-interop-stubs-")
    try:
        rc = protoc.main(["grpc_tools.protoc"] + include_dirs + [
            "--python_out=" + out_dir, "--grpc_python_out=" + out_dir
        ] + list(PROTOS))
        if rc != 0:
            raise RuntimeError("grpc_tools.protoc failed with status %d" % rc)
        try:
            import grpc.testing as existing  # grpcio-testing, if installed
            existing.__path__.append(os.path.join(out_dir, "grpc", "testing"))
        except ImportError:
            grpc.__path__.append(os.path.join(out_dir, "grpc"))
        stubs = Stubs()
        stubs.empty_pb2 = importlib.import_module("grpc.testing.empty_pb2")
        stubs.messages_pb2 = importlib.import_module(
            "grpc.testing.messages_pb2")
        stubs.test_pb2_grpc = importlib.import_module(
            "grpc.testing.test_pb2_grpc")
        return stubs
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)


_CODES_BY_VALUE = dict((c.value[0], c) for c in grpc.StatusCode)


def status_code(value):
    """grpc.StatusCode for a numeric code (UNKNOWN if out of range)."""
    return _CODES_BY_VALUE.get(value, grpc.StatusCode.UNKNOWN)


def make_servicer(stubs):
    empty_pb2 = stubs.empty_pb2
    messages_pb2 = stubs.messages_pb2

    def echo_metadata(context):
        """Echo Metadata: the initial key as initial metadata, the -bin key as
        trailing metadata, both with exactly the received value."""
        initial = []
        trailing = []
        for key, value in context.invocation_metadata():
            if key == INITIAL_METADATA_KEY:
                initial.append((key, value))
            elif key == TRAILING_METADATA_KEY:
                trailing.append((key, value))
        if initial:
            context.send_initial_metadata(tuple(initial))
        if trailing:
            context.set_trailing_metadata(tuple(trailing))

    def check_response_type(response_type, context):
        if response_type != messages_pb2.COMPRESSABLE:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          "unsupported response_type %d" % response_type)

    def payload(size, context):
        if size < 0:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          "negative payload size %d" % size)
        return messages_pb2.Payload(type=messages_pb2.COMPRESSABLE,
                                    body=b"\x00" * size)

    def end_with_status(echo_status, context):
        """Echo Status: close the call with the requested code and message."""
        code = status_code(echo_status.code)
        if code is grpc.StatusCode.OK:
            context.set_code(grpc.StatusCode.OK)
            context.set_details(echo_status.message)
            return
        context.abort(code, echo_status.message)

    def stream_responses(params_list, context, compression_set):
        """One StreamingOutputCallResponse per ResponseParameters, observing
        interval_us (a sleep before each response) and per-message
        compression."""
        for params in params_list:
            if params.interval_us > 0:
                time.sleep(params.interval_us / 1e6)
            if (params.HasField("compressed") and params.compressed.value
                    and not compression_set[0]):
                context.set_compression(grpc.Compression.Gzip)
                compression_set[0] = True
            if compression_set[0] and not (params.HasField("compressed")
                                           and params.compressed.value):
                context.disable_next_message_compression()
            yield messages_pb2.StreamingOutputCallResponse(
                payload=payload(params.size, context))

    class TestService(stubs.test_pb2_grpc.TestServiceServicer):

        def EmptyCall(self, request, context):
            echo_metadata(context)
            return empty_pb2.Empty()

        def UnaryCall(self, request, context):
            echo_metadata(context)
            if request.HasField("response_status"):
                end_with_status(request.response_status, context)
            check_response_type(request.response_type, context)
            if request.HasField("response_compressed"):
                context.set_compression(
                    grpc.Compression.Gzip if request.response_compressed.value
                    else grpc.Compression.NoCompression)
            return messages_pb2.SimpleResponse(
                payload=payload(request.response_size, context))

        def StreamingOutputCall(self, request, context):
            echo_metadata(context)
            if request.HasField("response_status"):
                end_with_status(request.response_status, context)
                return
            check_response_type(request.response_type, context)
            for response in stream_responses(request.response_parameters,
                                             context, [False]):
                yield response

        def StreamingInputCall(self, request_iterator, context):
            echo_metadata(context)
            total = 0
            for request in request_iterator:
                total += len(request.payload.body)
            return messages_pb2.StreamingInputCallResponse(
                aggregated_payload_size=total)

        def FullDuplexCall(self, request_iterator, context):
            echo_metadata(context)
            compression_set = [False]
            for request in request_iterator:
                # Echo Status: close at once, ignore anything that follows.
                if request.HasField("response_status"):
                    end_with_status(request.response_status, context)
                    return
                check_response_type(request.response_type, context)
                for response in stream_responses(request.response_parameters,
                                                 context, compression_set):
                    yield response

        def HalfDuplexCall(self, request_iterator, context):
            # Buffers every request until half-close, then answers in order.
            echo_metadata(context)
            requests = list(request_iterator)
            compression_set = [False]
            for request in requests:
                if request.HasField("response_status"):
                    end_with_status(request.response_status, context)
                    return
                check_response_type(request.response_type, context)
                for response in stream_responses(request.response_parameters,
                                                 context, compression_set):
                    yield response

        # UnimplementedCall: inherited from the generated servicer, which
        # answers UNIMPLEMENTED, as the interop suite requires.

    return TestService()


def parse_bool(text):
    value = text.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError("expected true or false, got %r" % text)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="grpcio grpc.testing.TestService interop server")
    parser.add_argument("--port", type=int, default=0,
                        help="port to listen on; 0 (default) lets the OS pick")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1)")
    parser.add_argument("--use_tls", type=parse_bool, default=False,
                        help="serve TLS (needs --tls_cert_file, "
                             "--tls_key_file)")
    parser.add_argument("--tls_cert_file")
    parser.add_argument("--tls_key_file")
    parser.add_argument("--tls_client_ca_file",
                        help="require client certificates from this CA")
    parser.add_argument("--max_workers", type=int, default=32)
    args = parser.parse_args(argv)
    if args.use_tls and not (args.tls_cert_file and args.tls_key_file):
        parser.error("--use_tls=true needs --tls_cert_file and --tls_key_file")
    if not 0 <= args.port <= 65535:
        parser.error("--port must be in 0..65535")

    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    stubs = load_stubs()
    server = grpc.server(
        concurrent.futures.ThreadPoolExecutor(max_workers=args.max_workers),
        options=[("grpc.so_reuseport", 0)])
    stubs.test_pb2_grpc.add_TestServiceServicer_to_server(
        make_servicer(stubs), server)
    address = "%s:%d" % (args.host, args.port)
    try:
        if args.use_tls:
            def read(path):
                with open(path, "rb") as f:
                    return f.read()
            ca = (read(args.tls_client_ca_file)
                  if args.tls_client_ca_file else None)
            creds = grpc.ssl_server_credentials(
                [(read(args.tls_key_file), read(args.tls_cert_file))],
                root_certificates=ca, require_client_auth=ca is not None)
            port = server.add_secure_port(address, creds)
        else:
            port = server.add_insecure_port(address)
    except RuntimeError as e:
        port = 0
        print("grpc_server: %s" % e, file=sys.stderr)
    if not port:
        print("grpc_server: cannot listen on %s" % address, file=sys.stderr)
        return 1
    server.start()
    sys.stdout.write("PORT %d\n" % port)
    sys.stdout.flush()

    while not stop.wait(0.5):
        pass
    server.stop(grace=2).wait(5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
