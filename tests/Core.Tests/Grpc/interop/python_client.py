"""A real grpcio client calling our C# server: python_client.py PORT.

Runs a unary, a server-streaming, a duplex and an error call, asserts each result, prints one
"PASS <name>" line per check and exits non-zero on the first mismatch.
"""
import sys

import grpc

from echo_messages import CHAT, ECHO, STREAM, EchoReply, EchoRequest

TIMEOUT = 10  # seconds per call: the script must never hang the test run


def check(name, condition, detail=""):
    if not condition:
        print(f"FAIL {name} {detail}", flush=True)
        sys.exit(1)
    print(f"PASS {name}", flush=True)


def main(port):
    # No proxies: the call must go straight to the loopback server.
    channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.enable_http_proxy", 0)])
    grpc.channel_ready_future(channel).result(timeout=TIMEOUT)
    serialize, parse = EchoRequest.SerializeToString, EchoReply.FromString

    unary = channel.unary_unary(ECHO, request_serializer=serialize, response_deserializer=parse)
    reply = unary(EchoRequest(text="hello from python", payload=b"\x00\x01\x02"), timeout=TIMEOUT)
    check("unary", reply.text == "hello from python" and reply.payload == b"\x00\x01\x02", repr(reply))

    stream = channel.unary_stream(STREAM, request_serializer=serialize, response_deserializer=parse)
    replies = list(stream(EchoRequest(text="s", repeat=100, payload=b"x" * 1000), timeout=TIMEOUT))
    check("server_streaming", [r.index for r in replies] == list(range(100))
          and all(r.text == "s" and len(r.payload) == 1000 for r in replies), f"got {len(replies)} replies")

    chat = channel.stream_stream(CHAT, request_serializer=serialize, response_deserializer=parse)
    requests = (EchoRequest(text=f"m{i}") for i in range(50))
    replies = list(chat(requests, timeout=TIMEOUT))
    check("duplex", [(r.text, r.index) for r in replies] == [(f"m{i}", i) for i in range(50)],
          f"got {len(replies)} replies")

    detail = "not here: ünïcödé 100%"
    try:
        unary(EchoRequest(text=detail, fail_with=grpc.StatusCode.NOT_FOUND.value[0]), timeout=TIMEOUT)
        check("error_status", False, "no error raised")
    except grpc.RpcError as error:
        check("error_status", error.code() == grpc.StatusCode.NOT_FOUND and error.details() == detail,
              f"{error.code()} {error.details()!r}")

    try:
        channel.unary_unary("/storage.test.Echo/Missing", request_serializer=serialize,
                            response_deserializer=parse)(EchoRequest(), timeout=TIMEOUT)
        check("unimplemented", False, "no error raised")
    except grpc.RpcError as error:
        check("unimplemented", error.code() == grpc.StatusCode.UNIMPLEMENTED, f"{error.code()}")

    try:
        unary(EchoRequest(text="slow", delay_ms=10_000), timeout=0.3)
        check("deadline", False, "no error raised")
    except grpc.RpcError as error:
        check("deadline", error.code() == grpc.StatusCode.DEADLINE_EXCEEDED, f"{error.code()}")

    channel.close()
    print("ALL PASSED", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]))
