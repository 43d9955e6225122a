using System.Buffers;
using System.Buffers.Binary;
using Google.Protobuf;

namespace Storage.Core.Grpc;

/// <summary>
/// Reads length-prefixed messages from the client's HTTP/2 response stream. The 5-byte prefix
/// buffer is reused and bodies go through a pooled buffer, so a read allocates only the message.
/// </summary>
internal sealed class StreamMessageReader(Stream stream, int maxSize)
{
    private readonly byte[] _header = new byte[GrpcProtocol.HeaderSize];

    /// <summary>The next message, or null when the stream ended cleanly between messages.</summary>
    public async ValueTask<T?> ReadAsync<T>(MessageParser<T> parser, CancellationToken ct)
        where T : class, IMessage<T>
    {
        int read = await stream.ReadAtLeastAsync(_header, GrpcProtocol.HeaderSize, throwOnEndOfStream: false, ct).ConfigureAwait(false);
        if (read == 0)
            return null;
        if (read < GrpcProtocol.HeaderSize)
            throw GrpcProtocol.TruncatedHeader(read);
        if (_header[0] != 0)
            throw GrpcProtocol.CompressedNotSupported();
        uint length = BinaryPrimitives.ReadUInt32BigEndian(_header.AsSpan(1));
        // Checked before reading the body: an oversized message is never buffered.
        if (length > (uint)maxSize)
            throw GrpcProtocol.ReceiveTooLarge(length, maxSize);
        if (length == 0)
            return parser.ParseFrom(ReadOnlySpan<byte>.Empty);

        byte[] body = ArrayPool<byte>.Shared.Rent((int)length);
        try
        {
            read = await stream.ReadAtLeastAsync(body.AsMemory(0, (int)length), (int)length, throwOnEndOfStream: false, ct).ConfigureAwait(false);
            if (read < length)
                throw GrpcProtocol.TruncatedBody(length, read);
            try
            {
                return parser.ParseFrom(body.AsSpan(0, (int)length));
            }
            catch (InvalidProtocolBufferException ex)
            {
                throw GrpcProtocol.InvalidMessage(typeof(T).Name, ex);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(body);
        }
    }
}

/// <summary>Serializes a message with its prefix into a buffer, for the client's request bodies.</summary>
internal static class MessageSerializer
{
    public static byte[] ToFrame(IMessage message, int maxSize)
    {
        int size = message.CalculateSize();
        if (size > maxSize)
            throw GrpcProtocol.SendTooLarge(size, maxSize);
        byte[] frame = new byte[GrpcProtocol.HeaderSize + size];
        WriteFrame(message, size, frame);
        return frame;
    }

    /// <summary>Same, into a rented buffer; the caller returns it to the pool once sent.</summary>
    public static PooledFrame ToPooledFrame(IMessage message, int maxSize)
    {
        int size = message.CalculateSize();
        if (size > maxSize)
            throw GrpcProtocol.SendTooLarge(size, maxSize);
        int length = GrpcProtocol.HeaderSize + size;
        byte[] buffer = ArrayPool<byte>.Shared.Rent(length);
        WriteFrame(message, size, buffer);
        return new PooledFrame(buffer, length);
    }

    private static void WriteFrame(IMessage message, int size, byte[] destination)
    {
        GrpcProtocol.WriteMessageHeader(destination, size);
        message.WriteTo(destination.AsSpan(GrpcProtocol.HeaderSize, size));
    }
}

internal readonly record struct PooledFrame(byte[] Buffer, int Length)
{
    public ReadOnlyMemory<byte> Memory => Buffer.AsMemory(0, Length);

    public void Return() => ArrayPool<byte>.Shared.Return(Buffer);
}
