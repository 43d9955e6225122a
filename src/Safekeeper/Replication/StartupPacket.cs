using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Text;
using Storage.Core.Postgres.Wire;

namespace Storage.Safekeeper.Replication;

/// <summary>A packet a client sends before its session starts (a length word, no type byte).</summary>
internal abstract record StartupPacket
{
    // The request codes of PostgreSQL's pqcomm.h.
    private const int SslRequestCode = 80877103, GssEncRequestCode = 80877104, CancelRequestCode = 80877102;

    /// <summary>An SSLRequest or GSSENCRequest: answered 'N' (the replication port speaks cleartext; its password is a short-lived token).</summary>
    public sealed record EncryptionRequest : StartupPacket;
    /// <summary>A CancelRequest: there is nothing to cancel here.</summary>
    public sealed record CancelRequest : StartupPacket;
    public sealed record Startup(IReadOnlyDictionary<string, string> Parameters) : StartupPacket
    {
        public string? Get(string name) => Parameters.GetValueOrDefault(name);
    }

    /// <summary>The next packet; null when the client closed before sending a whole one.</summary>
    public static async ValueTask<StartupPacket?> ReadAsync(PipeReader reader, CancellationToken ct) =>
        await PgFraming.ReadStartupPacketAsync(reader, ReplicationError.Protocol, ct) is { } packet ? Parse(packet) : null;

    private static StartupPacket Parse(ReadOnlySpan<byte> packet)
    {
        int code = BinaryPrimitives.ReadInt32BigEndian(packet[4..]);
        switch (code)
        {
            case SslRequestCode or GssEncRequestCode when packet.Length == 8: return new EncryptionRequest();
            case CancelRequestCode: return new CancelRequest();
        }
        if (code >> 16 != 3) throw ReplicationError.Protocol($"unsupported frontend protocol {code >> 16}.{code & 0xFFFF}: server supports 3.0");
        var parameters = new Dictionary<string, string>(StringComparer.Ordinal);
        var body = packet[8..];
        // Name/value pairs of zero-terminated strings, then one more zero.
        while (true)
        {
            if (body.IsEmpty) throw ReplicationError.Protocol("invalid startup packet layout: expected terminator as last byte");
            if (body[0] == 0) break;
            var name = ReadCString(ref body);
            parameters[name] = ReadCString(ref body);
        }
        return new Startup(parameters);
    }

    private static string ReadCString(ref ReadOnlySpan<byte> body)
    {
        int end = body.IndexOf((byte)0);
        if (end < 0) throw ReplicationError.Protocol("invalid startup packet layout: expected terminator as last byte");
        string text;
        try { text = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(body[..end]); }
        catch (DecoderFallbackException) { throw ReplicationError.Protocol("invalid byte sequence in startup packet (not UTF-8)"); }
        body = body[(end + 1)..];
        return text;
    }
}
