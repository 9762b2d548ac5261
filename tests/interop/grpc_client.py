#!/usr/bin/python3
"""grpcio interop client: the official gRPC interop test cases, as written in
gRPC's doc/interop-test-descriptions.md (see docs/interop.md).

    grpc_client.py --server_host=H --server_port=N --test_case=NAME
                   [--use_tls=false] [--server_host_override=NAME]
                   [--ca_file=PEM] [--tls_cert_file=PEM --tls_key_file=PEM]
                   [--rpc_timeout=SECONDS]

With --use_tls=true it verifies the server against --ca_file (or the system
store) and the name in --server_host_override (or the host); the client
certificate is for servers that require one.

Exit status: 0 when every assertion of the case holds ("PASS <case>" on
stdout), 1 when one fails ("FAIL <case>: <reason>" on stderr), 2 for a usage
error (unknown case, bad flag).

Cases: empty_unary large_unary client_streaming server_streaming ping_pong
empty_stream cancel_after_begin cancel_after_first_response
timeout_on_sleeping_server custom_metadata status_code_and_message
special_status_message unimplemented_method unimplemented_service.

custom_metadata and status_code_and_message have a UnaryCall step and a
FullDuplexCall step. "<case>_unary" runs only the UnaryCall step (used while a
peer has no streaming yet); the plain name runs both steps, in order.

Every RPC except timeout_on_sleeping_server's carries a deadline of
--rpc_timeout seconds (default 20) so that a broken peer fails the case
instead of hanging it.
"""

import argparse
import os
import queue
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import grpc  # noqa: E402

from grpc_server import load_stubs, parse_bool  # noqa: E402

INITIAL_METADATA_KEY = "x-grpc-test-echo-initial"
INITIAL_METADATA_VALUE = "test_initial_metadata_value"
TRAILING_METADATA_KEY = "x-grpc-test-echo-trailing-bin"
TRAILING_METADATA_VALUE = b"\xab\xab\xab"


class TestFailure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise TestFailure(message)


def describe_error(e):
    return "%s: %r" % (e.code(), e.details())


class RequestQueue(object):
    """A request iterator the test feeds one message at a time; close()
    half-closes the stream."""

    _CLOSE = object()

    def __init__(self):
        self._queue = queue.Queue()

    def __iter__(self):
        return self

    def __next__(self):
        item = self._queue.get()
        if item is self._CLOSE:
            raise StopIteration()
        return item

    def add(self, request):
        self._queue.put(request)

    def close(self):
        self._queue.put(self._CLOSE)


class Context(object):

    def __init__(self, stubs, channel, rpc_timeout):
        self.stubs = stubs
        self.empty_pb2 = stubs.empty_pb2
        self.messages_pb2 = stubs.messages_pb2
        self.stub = stubs.test_pb2_grpc.TestServiceStub(channel)
        self.unimplemented_stub = stubs.test_pb2_grpc.UnimplementedServiceStub(
            channel)
        self.timeout = rpc_timeout

    def zeros(self, size):
        return self.messages_pb2.Payload(body=b"\x00" * size)

    def check_payload(self, payload, size, what):
        """Response payload: `size` zero bytes of type COMPRESSABLE."""
        check(len(payload.body) == size,
              "%s: payload body is %d bytes, expected %d" %
              (what, len(payload.body), size))
        check(payload.body == b"\x00" * size,
              "%s: payload body is not all zeros" % what)
        check(payload.type == self.messages_pb2.COMPRESSABLE,
              "%s: payload type is %d, expected COMPRESSABLE" %
              (what, payload.type))

    def expect_unary_ok(self, multicallable, request, what, **kwargs):
        try:
            return multicallable.with_call(request, timeout=self.timeout,
                                           **kwargs)
        except grpc.RpcError as e:
            raise TestFailure("%s failed: %s" % (what, describe_error(e)))

    def expect_unary_error(self, multicallable, request, code, message, what):
        """Calls `multicallable` and asserts it fails with `code` (and, unless
        message is None, exactly `message`)."""
        try:
            multicallable.with_call(request, timeout=self.timeout)
        except grpc.RpcError as e:
            check(e.code() == code,
                  "%s: status is %s, expected %s (message %r)" %
                  (what, e.code(), code, e.details()))
            if message is not None:
                check(e.details() == message,
                      "%s: status message is %r, expected %r" %
                      (what, e.details(), message))
            return
        raise TestFailure("%s: call succeeded, expected status %s" %
                          (what, code))


def drain(call, what):
    """Reads every remaining response of a streaming call; returns them, or
    raises TestFailure if the call ends with a non-OK status."""
    responses = []
    try:
        for response in call:
            responses.append(response)
    except grpc.RpcError as e:
        raise TestFailure("%s failed after %d responses: %s" %
                          (what, len(responses), describe_error(e)))
    check(call.code() == grpc.StatusCode.OK,
          "%s ended with status %s, expected OK" % (what, call.code()))
    return responses


# --- The test cases --------------------------------------------------------


def empty_unary(ctx):
    response, call = ctx.expect_unary_ok(ctx.stub.EmptyCall,
                                         ctx.empty_pb2.Empty(), "EmptyCall")
    check(response is not None, "EmptyCall: response is null")
    check(isinstance(response, ctx.empty_pb2.Empty),
          "EmptyCall: response is a %s, not grpc.testing.Empty" %
          type(response).__name__)
    check(response.ByteSize() == 0,
          "EmptyCall: response is not zero bytes serialized")


def large_unary(ctx):
    m = ctx.messages_pb2
    request = m.SimpleRequest(response_type=m.COMPRESSABLE,
                              response_size=314159,
                              payload=ctx.zeros(271828))
    response, call = ctx.expect_unary_ok(ctx.stub.UnaryCall, request,
                                         "UnaryCall")
    ctx.check_payload(response.payload, 314159, "UnaryCall")


def client_streaming(ctx):
    m = ctx.messages_pb2
    sizes = (27182, 8, 1828, 45904)
    requests = (m.StreamingInputCallRequest(payload=ctx.zeros(size))
                for size in sizes)
    try:
        response, call = ctx.stub.StreamingInputCall.with_call(
            requests, timeout=ctx.timeout)
    except grpc.RpcError as e:
        raise TestFailure("StreamingInputCall failed: %s" % describe_error(e))
    check(response.aggregated_payload_size == 74922,
          "StreamingInputCall: aggregated_payload_size is %d, expected 74922" %
          response.aggregated_payload_size)


def server_streaming(ctx):
    m = ctx.messages_pb2
    sizes = (31415, 9, 2653, 58979)
    request = m.StreamingOutputCallRequest(
        response_type=m.COMPRESSABLE,
        response_parameters=[m.ResponseParameters(size=s) for s in sizes])
    call = ctx.stub.StreamingOutputCall(request, timeout=ctx.timeout)
    responses = drain(call, "StreamingOutputCall")
    check(len(responses) == len(sizes),
          "StreamingOutputCall: got %d responses, expected exactly %d" %
          (len(responses), len(sizes)))
    for i, (response, size) in enumerate(zip(responses, sizes)):
        ctx.check_payload(response.payload, size,
                          "StreamingOutputCall response %d" % (i + 1))


def ping_pong(ctx):
    m = ctx.messages_pb2
    response_sizes = (31415, 9, 2653, 58979)
    payload_sizes = (27182, 8, 1828, 45904)
    requests = RequestQueue()
    call = ctx.stub.FullDuplexCall(requests, timeout=ctx.timeout)
    try:
        for i, (response_size, payload_size) in enumerate(
                zip(response_sizes, payload_sizes)):
            requests.add(
                m.StreamingOutputCallRequest(
                    response_type=m.COMPRESSABLE,
                    response_parameters=[m.ResponseParameters(
                        size=response_size)],
                    payload=ctx.zeros(payload_size)))
            try:
                response = next(call)
            except StopIteration:
                raise TestFailure(
                    "FullDuplexCall: stream ended after %d responses, "
                    "expected 4" % i)
            except grpc.RpcError as e:
                raise TestFailure("FullDuplexCall failed after %d responses: "
                                  "%s" % (i, describe_error(e)))
            ctx.check_payload(response.payload, response_size,
                              "FullDuplexCall response %d" % (i + 1))
    finally:
        requests.close()  # half-close (also unblocks the sender on failure)
    extra = drain(call, "FullDuplexCall")
    check(not extra, "FullDuplexCall: got %d responses, expected exactly 4" %
          (4 + len(extra)))


def empty_stream(ctx):
    call = ctx.stub.FullDuplexCall(iter(()), timeout=ctx.timeout)
    responses = drain(call, "FullDuplexCall")
    check(not responses,
          "FullDuplexCall: got %d responses, expected exactly zero" %
          len(responses))


def cancel_after_begin(ctx):
    requests = RequestQueue()
    future = ctx.stub.StreamingInputCall.future(requests, timeout=ctx.timeout)
    try:
        future.cancel()
        try:
            future.result(timeout=ctx.timeout)
        except grpc.FutureCancelledError:
            pass
        except grpc.RpcError as e:
            raise TestFailure(
                "StreamingInputCall: completed with %s, expected CANCELLED" %
                describe_error(e))
        else:
            raise TestFailure("StreamingInputCall: completed successfully "
                              "after cancel, expected CANCELLED")
        check(future.code() == grpc.StatusCode.CANCELLED,
              "StreamingInputCall: status is %s, expected CANCELLED" %
              future.code())
    finally:
        requests.close()


def cancel_after_first_response(ctx):
    m = ctx.messages_pb2
    requests = RequestQueue()
    call = ctx.stub.FullDuplexCall(requests, timeout=ctx.timeout)
    try:
        requests.add(
            m.StreamingOutputCallRequest(
                response_type=m.COMPRESSABLE,
                response_parameters=[m.ResponseParameters(size=31415)],
                payload=ctx.zeros(27182)))
        try:
            next(call)
        except StopIteration:
            raise TestFailure("FullDuplexCall: stream ended without a response")
        except grpc.RpcError as e:
            raise TestFailure("FullDuplexCall failed before the first "
                              "response: %s" % describe_error(e))
        call.cancel()
        try:
            next(call)
        except grpc.RpcError as e:
            check(e.code() == grpc.StatusCode.CANCELLED,
                  "FullDuplexCall: completed with %s, expected CANCELLED" %
                  describe_error(e))
        except StopIteration:
            raise TestFailure("FullDuplexCall: completed with OK after "
                              "cancel, expected CANCELLED")
        else:
            raise TestFailure("FullDuplexCall: got a response after cancel, "
                              "expected the call to end CANCELLED")
        check(call.code() == grpc.StatusCode.CANCELLED,
              "FullDuplexCall: status is %s, expected CANCELLED" % call.code())
    finally:
        requests.close()


def timeout_on_sleeping_server(ctx):
    m = ctx.messages_pb2
    requests = RequestQueue()
    # The case's own deadline: 1 ms. The stream is left open (no half-close):
    # the client just waits for the call to end.
    call = ctx.stub.FullDuplexCall(requests, timeout=0.001)
    try:
        requests.add(
            m.StreamingOutputCallRequest(response_type=m.COMPRESSABLE,
                                         payload=ctx.zeros(27182)))
        try:
            for _ in call:
                pass
        except grpc.RpcError as e:
            check(e.code() == grpc.StatusCode.DEADLINE_EXCEEDED,
                  "FullDuplexCall: completed with %s, expected "
                  "DEADLINE_EXCEEDED" % describe_error(e))
        else:
            raise TestFailure("FullDuplexCall: completed with OK, expected "
                              "DEADLINE_EXCEEDED")
        check(call.code() == grpc.StatusCode.DEADLINE_EXCEEDED,
              "FullDuplexCall: status is %s, expected DEADLINE_EXCEEDED" %
              call.code())
    finally:
        requests.close()


def check_echoed_metadata(call, what):
    initial = list(call.initial_metadata() or ())
    trailing = list(call.trailing_metadata() or ())
    initial_values = [v for k, v in initial if k == INITIAL_METADATA_KEY]
    trailing_values = [v for k, v in trailing if k == TRAILING_METADATA_KEY]
    check(initial_values == [INITIAL_METADATA_VALUE],
          "%s: initial metadata %r: expected %s=%r" %
          (what, initial, INITIAL_METADATA_KEY, INITIAL_METADATA_VALUE))
    check(trailing_values == [TRAILING_METADATA_VALUE],
          "%s: trailing metadata %r: expected %s=%r" %
          (what, trailing, TRAILING_METADATA_KEY, TRAILING_METADATA_VALUE))


ECHO_METADATA = ((INITIAL_METADATA_KEY, INITIAL_METADATA_VALUE),
                 (TRAILING_METADATA_KEY, TRAILING_METADATA_VALUE))


def custom_metadata_unary_step(ctx):
    m = ctx.messages_pb2
    request = m.SimpleRequest(response_type=m.COMPRESSABLE,
                              response_size=314159,
                              payload=ctx.zeros(271828))
    response, call = ctx.expect_unary_ok(ctx.stub.UnaryCall, request,
                                         "UnaryCall", metadata=ECHO_METADATA)
    ctx.check_payload(response.payload, 314159, "UnaryCall")
    check_echoed_metadata(call, "UnaryCall")


def custom_metadata_full_duplex_step(ctx):
    m = ctx.messages_pb2
    request = m.StreamingOutputCallRequest(
        response_type=m.COMPRESSABLE,
        response_parameters=[m.ResponseParameters(size=314159)],
        payload=ctx.zeros(271828))
    requests = RequestQueue()
    requests.add(request)
    requests.close()  # one request, then half-close
    call = ctx.stub.FullDuplexCall(requests, timeout=ctx.timeout,
                                   metadata=ECHO_METADATA)
    responses = drain(call, "FullDuplexCall")
    check(len(responses) == 1,
          "FullDuplexCall: got %d responses, expected 1" % len(responses))
    ctx.check_payload(responses[0].payload, 314159, "FullDuplexCall")
    check_echoed_metadata(call, "FullDuplexCall")


STATUS_CODE = 2  # UNKNOWN
STATUS_MESSAGE = "test status message"
SPECIAL_STATUS_MESSAGE = (
    u"\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP "
    u"\U0001f608\t\n")


def status_code_and_message_unary_step(ctx):
    m = ctx.messages_pb2
    request = m.SimpleRequest(response_status=m.EchoStatus(
        code=STATUS_CODE, message=STATUS_MESSAGE))
    ctx.expect_unary_error(ctx.stub.UnaryCall, request, grpc.StatusCode.UNKNOWN,
                           STATUS_MESSAGE, "UnaryCall")


def status_code_and_message_full_duplex_step(ctx):
    m = ctx.messages_pb2
    requests = RequestQueue()
    requests.add(
        m.StreamingOutputCallRequest(response_status=m.EchoStatus(
            code=STATUS_CODE, message=STATUS_MESSAGE)))
    requests.close()  # then half-close
    call = ctx.stub.FullDuplexCall(requests, timeout=ctx.timeout)
    try:
        for _ in call:
            pass
    except grpc.RpcError:
        pass
    check(call.code() == grpc.StatusCode.UNKNOWN,
          "FullDuplexCall: status is %s (message %r), expected %s" %
          (call.code(), call.details(), grpc.StatusCode.UNKNOWN))
    check(call.details() == STATUS_MESSAGE,
          "FullDuplexCall: status message is %r, expected %r" %
          (call.details(), STATUS_MESSAGE))


def special_status_message(ctx):
    m = ctx.messages_pb2
    request = m.SimpleRequest(response_status=m.EchoStatus(
        code=STATUS_CODE, message=SPECIAL_STATUS_MESSAGE))
    ctx.expect_unary_error(ctx.stub.UnaryCall, request, grpc.StatusCode.UNKNOWN,
                           SPECIAL_STATUS_MESSAGE, "UnaryCall")


def unimplemented_method(ctx):
    ctx.expect_unary_error(ctx.stub.UnimplementedCall, ctx.empty_pb2.Empty(),
                           grpc.StatusCode.UNIMPLEMENTED, None,
                           "grpc.testing.TestService/UnimplementedCall")


def unimplemented_service(ctx):
    ctx.expect_unary_error(ctx.unimplemented_stub.UnimplementedCall,
                           ctx.empty_pb2.Empty(),
                           grpc.StatusCode.UNIMPLEMENTED, None,
                           "grpc.testing.UnimplementedService/"
                           "UnimplementedCall")


# name -> steps, run in order.
TEST_CASES = {
    "empty_unary": [empty_unary],
    "large_unary": [large_unary],
    "client_streaming": [client_streaming],
    "server_streaming": [server_streaming],
    "ping_pong": [ping_pong],
    "empty_stream": [empty_stream],
    "cancel_after_begin": [cancel_after_begin],
    "cancel_after_first_response": [cancel_after_first_response],
    "timeout_on_sleeping_server": [timeout_on_sleeping_server],
    "custom_metadata": [custom_metadata_unary_step,
                        custom_metadata_full_duplex_step],
    "custom_metadata_unary": [custom_metadata_unary_step],
    "status_code_and_message": [status_code_and_message_unary_step,
                                status_code_and_message_full_duplex_step],
    "status_code_and_message_unary": [status_code_and_message_unary_step],
    "special_status_message": [special_status_message],
    "unimplemented_method": [unimplemented_method],
    "unimplemented_service": [unimplemented_service],
}


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="grpcio gRPC interop client",
        epilog="test cases: " + " ".join(sorted(TEST_CASES)))
    parser.add_argument("--server_host", default="127.0.0.1")
    parser.add_argument("--server_host_override", default=None,
                        help="value for the :authority header")
    parser.add_argument("--server_port", type=int, required=True)
    parser.add_argument("--test_case", required=True)
    parser.add_argument("--use_tls", type=parse_bool, default=False,
                        help="speak TLS, verifying the server")
    parser.add_argument("--ca_file",
                        help="PEM CAs to trust with TLS (default: system)")
    parser.add_argument("--tls_cert_file",
                        help="PEM client certificate (mutual TLS)")
    parser.add_argument("--tls_key_file", help="PEM client key (mutual TLS)")
    parser.add_argument("--rpc_timeout", type=float, default=20.0,
                        help="deadline of each RPC in seconds (default 20)")
    parser.add_argument("--connect_timeout", type=float, default=10.0,
                        help="seconds to wait for the channel to connect")
    args = parser.parse_args(argv)
    steps = TEST_CASES.get(args.test_case)
    if steps is None:
        parser.error("unknown test case %r (known: %s)" %
                     (args.test_case, " ".join(sorted(TEST_CASES))))

    target = "%s:%d" % (args.server_host, args.server_port)
    # Never route the test connection through an HTTP proxy from the
    # environment (grpcio honours http_proxy/grpc_proxy by default).
    options = [("grpc.enable_http_proxy", 0)]
    if args.server_host_override:
        options.append(("grpc.default_authority", args.server_host_override))
        if args.use_tls:
            options.append(("grpc.ssl_target_name_override",
                            args.server_host_override))
    stubs = load_stubs()
    start = time.monotonic()
    if args.use_tls:
        def read(path):
            with open(path, "rb") as f:
                return f.read()
        creds = grpc.ssl_channel_credentials(
            root_certificates=read(args.ca_file) if args.ca_file else None,
            private_key=(read(args.tls_key_file)
                         if args.tls_key_file else None),
            certificate_chain=(read(args.tls_cert_file)
                               if args.tls_cert_file else None))
        channel = grpc.secure_channel(target, creds, options=options)
    else:
        channel = grpc.insecure_channel(target, options=options)
    with channel:
        try:
            grpc.channel_ready_future(channel).result(
                timeout=args.connect_timeout)
        except grpc.FutureTimeoutError:
            print("FAIL %s: cannot connect to %s within %gs" %
                  (args.test_case, target, args.connect_timeout),
                  file=sys.stderr)
            return 1
        ctx = Context(stubs, channel, args.rpc_timeout)
        try:
            for step in steps:
                step(ctx)
        except TestFailure as e:
            print("FAIL %s: %s" % (args.test_case, e), file=sys.stderr)
            return 1
        except grpc.RpcError as e:
            print("FAIL %s: unexpected RPC error %s" %
                  (args.test_case, describe_error(e)), file=sys.stderr)
            return 1
    print("PASS %s (%.3fs)" % (args.test_case, time.monotonic() - start))
    return 0


if __name__ == "__main__":
    sys.exit(main())
