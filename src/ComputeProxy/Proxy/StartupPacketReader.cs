using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;

namespace Storage.ComputeProxy.Proxy;

/// <summary>Reads one length-prefixed startup-phase packet from a client, within the size limit.</summary>
public static class StartupPacketReader
{
    /// <summary>
    /// The next packet, or null when the client closed the connection before sending a whole one
    /// (PostgreSQL closes such a connection silently: there is nobody left to tell).
    /// </summary>
    public static async ValueTask<StartupPacket?> ReadAsync(PipeReader reader, CancellationToken ct)
    {
        while (true)
        {
            var result = await reader.ReadAsync(ct);
            var buffer = result.Buffer;
            if (buffer.Length >= 4)
            {
                int length = ReadLength(buffer);
                // Checked before waiting for the body, so garbage or a huge length is refused at once.
                if (length < 8 || length > StartupPacket.MaxLength)
                    throw ProxyRejectException.Protocol("invalid length of startup packet");
                if (buffer.Length >= length)
                {
                    var packet = buffer.Slice(0, length);
                    StartupPacket parsed = packet.IsSingleSegment ? StartupPacket.Parse(packet.FirstSpan) : StartupPacket.Parse(packet.ToArray());
                    reader.AdvanceTo(packet.End);
                    return parsed;
                }
            }
            if (result.IsCompleted) { reader.AdvanceTo(buffer.End); return null; }
            reader.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    /// <summary>True when the client sent more bytes than the packet just read (it must wait for our answer first).</summary>
    public static bool HasBufferedBytes(PipeReader reader) =>
        reader.TryRead(out var result) && ReturnLength(reader, result) > 0;

    private static long ReturnLength(PipeReader reader, ReadResult result)
    {
        long length = result.Buffer.Length;
        reader.AdvanceTo(result.Buffer.Start);
        return length;
    }

    private static int ReadLength(ReadOnlySequence<byte> buffer)
    {
        Span<byte> word = stackalloc byte[4];
        buffer.Slice(0, 4).CopyTo(word);
        return BinaryPrimitives.ReadInt32BigEndian(word);
    }
}
