using System.IO.Pipelines;
using Storage.Core.Postgres.Wire;

namespace Storage.ComputeProxy.Proxy;

/// <summary>Reads one length-prefixed startup-phase packet from a client, within the size limit.</summary>
public static class StartupPacketReader
{
    /// <summary>
    /// The next packet, or null when the client closed the connection before sending a whole one
    /// (PostgreSQL closes such a connection silently: there is nobody left to tell).
    /// </summary>
    public static async ValueTask<StartupPacket?> ReadAsync(PipeReader reader, CancellationToken ct) =>
        await PgFraming.ReadStartupPacketAsync(reader, ProxyRejectException.Protocol, ct) is { } packet ? StartupPacket.Parse(packet) : null;

    /// <summary>True when the client sent more bytes than the packet just read (it must wait for our answer first).</summary>
    public static bool HasBufferedBytes(PipeReader reader) =>
        reader.TryRead(out var result) && ReturnLength(reader, result) > 0;

    private static long ReturnLength(PipeReader reader, ReadResult result)
    {
        long length = result.Buffer.Length;
        reader.AdvanceTo(result.Buffer.Start);
        return length;
    }
}
