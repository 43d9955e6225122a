"""EchoRequest / EchoReply from proto/test.proto, built at runtime from a descriptor.

No generated code is needed: the message classes come from a FileDescriptorProto written out
here field by field, so real protobuf bytes cross the wire. Keep in sync with ../echo.proto.
"""
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto


def _build():
    fdp = descriptor_pb2.FileDescriptorProto(
        name="storage_test_interop.proto", package="storage.test", syntax="proto3")
    request = fdp.message_type.add(name="EchoRequest")
    for name, number, kind in [("text", 1, _F.TYPE_STRING), ("repeat", 2, _F.TYPE_INT32),
                               ("payload", 3, _F.TYPE_BYTES), ("fail_with", 4, _F.TYPE_INT32),
                               ("delay_ms", 5, _F.TYPE_INT32), ("fail_kind", 6, _F.TYPE_STRING)]:
        request.field.add(name=name, number=number, type=kind, label=_F.LABEL_OPTIONAL)
    reply = fdp.message_type.add(name="EchoReply")
    for name, number, kind in [("text", 1, _F.TYPE_STRING), ("index", 2, _F.TYPE_INT32),
                               ("payload", 3, _F.TYPE_BYTES)]:
        reply.field.add(name=name, number=number, type=kind, label=_F.LABEL_OPTIONAL)

    pool = descriptor_pool.DescriptorPool()  # private pool: no clash with other descriptors
    pool.Add(fdp)

    def message_class(full_name):
        descriptor = pool.FindMessageTypeByName(full_name)
        if hasattr(message_factory, "GetMessageClass"):  # protobuf >= 4.22
            return message_factory.GetMessageClass(descriptor)
        return message_factory.MessageFactory(pool).GetPrototype(descriptor)

    return message_class("storage.test.EchoRequest"), message_class("storage.test.EchoReply")


EchoRequest, EchoReply = _build()

SERVICE = "storage.test.Echo"
ECHO = f"/{SERVICE}/Echo"
STREAM = f"/{SERVICE}/Stream"
CHAT = f"/{SERVICE}/Chat"
