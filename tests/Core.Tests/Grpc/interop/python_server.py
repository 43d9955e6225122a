"""A real grpcio server for our C# client: python_server.py.

Serves storage.test.Echo (Echo, Stream, Chat) with the same semantics as the C# test service,
on a free loopback port that it prints as "PORT <n>". It exits when stdin closes or after
MAX_LIFETIME seconds, whichever comes first, so it can never outlive the test for long.
"""
import sys
import threading
import time
from concurrent import futures

import grpc

from echo_messages import SERVICE, EchoReply, EchoRequest

MAX_LIFETIME = 120
STATUS_BY_CODE = {status.value[0]: status for status in grpc.StatusCode}


def delay_and_fail(request, context):
    if request.delay_ms:
        time.sleep(request.delay_ms / 1000)
    if request.fail_with:
        context.abort(STATUS_BY_CODE[request.fail_with], request.text)


def echo(request, context):
    delay_and_fail(request, context)
    payload = bytes(request.repeat) if request.repeat > 0 else request.payload
    return EchoReply(text=request.text, payload=payload)


def stream(request, context):
    for i in range(request.repeat):
        yield EchoReply(text=request.text, index=i, payload=request.payload)
    delay_and_fail(request, context)


def chat(requests, context):
    for i, request in enumerate(requests):
        delay_and_fail(request, context)
        yield EchoReply(text=request.text, index=i, payload=request.payload)


def main():
    options = dict(request_deserializer=EchoRequest.FromString, response_serializer=EchoReply.SerializeToString)
    handler = grpc.method_handlers_generic_handler(SERVICE, {
        "Echo": grpc.unary_unary_rpc_method_handler(echo, **options),
        "Stream": grpc.unary_stream_rpc_method_handler(stream, **options),
        "Chat": grpc.stream_stream_rpc_method_handler(chat, **options),
    })
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16),
                         options=[("grpc.max_receive_message_length", 16 * 1024 * 1024)])
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"PORT {port}", flush=True)

    done = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    done.wait(MAX_LIFETIME)
    server.stop(grace=None)


if __name__ == "__main__":
    main()
