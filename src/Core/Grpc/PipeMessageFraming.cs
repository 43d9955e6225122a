using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using Google.Protobuf;

namespace Storage.Core.Grpc;

/// <summary>
/// Reads and writes length-prefixed gRPC messages on the server's request/response pipes.
/// Parsing works on the pipe's own buffers, so no per-message copy is made.
/// </summary>
internal static class PipeMessageFraming
{
    /// <summary>
    /// Reads one message; null when the peer ended the stream cleanly between messages.
    /// The size limit is checked from the prefix alone, before the body is buffered.
    /// </summary>
    public static async ValueTask<T?> ReadAsync<T>(PipeReader reader, MessageParser<T> parser, int maxSize, CancellationToken ct)
        where T : class, IMessage<T>
    {
        while (true)
        {
            ReadResult result = await reader.ReadAsync(ct).ConfigureAwait(false);
            ReadOnlySequence<byte> buffer = result.Buffer;
            SequencePosition consumed = buffer.Start;
            SequencePosition examined = buffer.End;
            try
            {
                if (buffer.Length >= GrpcProtocol.HeaderSize)
                {
                    int length = ReadHeader(buffer, maxSize);
                    long frameSize = GrpcProtocol.HeaderSize + (long)length;
                    if (buffer.Length >= frameSize)
                    {
                        T message = Parse(parser, buffer.Slice(GrpcProtocol.HeaderSize, length));
                        // Only this frame was examined: bytes of further frames already in the
                        // buffer must be readable at once, or the next read waits for data the
                        // peer may never send (it can be blocked on the flow-control window).
                        consumed = examined = buffer.GetPosition(frameSize);
                        return message;
                    }
                    if (result.IsCompleted)
                        throw GrpcProtocol.TruncatedBody(length, buffer.Length - GrpcProtocol.HeaderSize);
                }
                else if (result.IsCompleted)
                {
                    if (buffer.IsEmpty)
                        return null;
                    throw GrpcProtocol.TruncatedHeader(buffer.Length);
                }
            }
            finally
            {
                // After an incomplete frame everything was examined: the next ReadAsync waits
                // for more bytes instead of spinning.
                reader.AdvanceTo(consumed, examined);
            }
        }
    }

    /// <summary>Writes the prefix and the message straight into the pipe, then flushes at once.</summary>
    public static ValueTask<FlushResult> WriteAsync<T>(PipeWriter writer, T message, int maxSize, CancellationToken ct)
        where T : class, IMessage<T>
    {
        int size = message.CalculateSize();
        if (size > maxSize)
            throw GrpcProtocol.SendTooLarge(size, maxSize);
        GrpcProtocol.WriteMessageHeader(writer.GetSpan(GrpcProtocol.HeaderSize), size);
        writer.Advance(GrpcProtocol.HeaderSize);
        if (size > 0)
            message.WriteTo(writer);
        return writer.FlushAsync(ct);
    }

    private static int ReadHeader(ReadOnlySequence<byte> buffer, int maxSize)
    {
        Span<byte> header = stackalloc byte[GrpcProtocol.HeaderSize];
        buffer.Slice(0, GrpcProtocol.HeaderSize).CopyTo(header);
        if (header[0] != 0)
            throw GrpcProtocol.CompressedNotSupported();
        uint length = BinaryPrimitives.ReadUInt32BigEndian(header[1..]);
        if (length > (uint)maxSize)
            throw GrpcProtocol.ReceiveTooLarge(length, maxSize);
        return (int)length;
    }

    private static T Parse<T>(MessageParser<T> parser, ReadOnlySequence<byte> payload)
        where T : class, IMessage<T>
    {
        try
        {
            return parser.ParseFrom(payload);
        }
        catch (InvalidProtocolBufferException ex)
        {
            throw GrpcProtocol.InvalidMessage(typeof(T).Name, ex);
        }
    }
}
