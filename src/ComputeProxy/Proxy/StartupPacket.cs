using System.Buffers.Binary;
using System.Text;

namespace Storage.ComputeProxy.Proxy;

/// <summary>A packet a client may send before the session starts (no type byte, only a length word).</summary>
public abstract record StartupPacket
{
    // The magic protocol numbers of the special requests (PostgreSQL's pqcomm.h).
    public const int SslRequestCode = 80877103;
    public const int GssEncRequestCode = 80877104;
    public const int CancelRequestCode = 80877102;
    public const int ProtocolMajor = 3;

    /// <summary>PostgreSQL's limit on a startup packet (MAX_STARTUP_PACKET_LENGTH).</summary>
    public const int MaxLength = Storage.Core.Postgres.Wire.PgFraming.MaxStartupPacketLength;

    public sealed record SslRequest : StartupPacket;
    public sealed record GssEncRequest : StartupPacket;

    /// <summary>A CancelRequest; <see cref="Key"/> is the backend's process id and secret exactly as sent.</summary>
    public sealed record CancelRequest(byte[] Key, byte[] Raw) : StartupPacket
    {
        public int ProcessId => BinaryPrimitives.ReadInt32BigEndian(Key);
    }

    /// <summary>A StartupMessage: the protocol version and the parameters in the order sent.</summary>
    public sealed record Startup(int ProtocolVersion, IReadOnlyList<KeyValuePair<string, string>> Parameters) : StartupPacket
    {
        public string? Get(string name) => Parameters.FirstOrDefault(p => p.Key == name).Value;

        /// <summary>The packet as sent to PostgreSQL: length, version, name/value pairs, a final zero.</summary>
        public byte[] Serialize()
        {
            int length = 4 + 4 + 1;
            foreach (var (name, value) in Parameters)
                length += Encoding.UTF8.GetByteCount(name) + 1 + Encoding.UTF8.GetByteCount(value) + 1;
            var bytes = new byte[length];
            BinaryPrimitives.WriteInt32BigEndian(bytes, length);
            BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4), ProtocolVersion);
            int at = 8;
            foreach (var (name, value) in Parameters)
            {
                at += Encoding.UTF8.GetBytes(name, bytes.AsSpan(at)); bytes[at++] = 0;
                at += Encoding.UTF8.GetBytes(value, bytes.AsSpan(at)); bytes[at++] = 0;
            }
            bytes[at] = 0;
            return bytes;
        }
    }

    /// <summary>
    /// Parses a whole packet (length word included). Throws <see cref="ProxyRejectException"/>
    /// (08P01) for anything PostgreSQL would refuse.
    /// </summary>
    public static StartupPacket Parse(ReadOnlySpan<byte> packet)
    {
        if (packet.Length < 8 || BinaryPrimitives.ReadInt32BigEndian(packet) != packet.Length)
            throw ProxyRejectException.Protocol("invalid length of startup packet");
        int code = BinaryPrimitives.ReadInt32BigEndian(packet[4..]);
        switch (code)
        {
            case SslRequestCode when packet.Length == 8: return new SslRequest();
            case GssEncRequestCode when packet.Length == 8: return new GssEncRequest();
            // 16 bytes in protocol 3.0; 3.2 allows a longer secret (up to 256 bytes).
            case CancelRequestCode when packet.Length is >= 16 and <= 8 + 4 + 256:
                return new CancelRequest(packet[8..].ToArray(), packet.ToArray());
            case SslRequestCode or GssEncRequestCode or CancelRequestCode:
                throw ProxyRejectException.Protocol("invalid length of startup packet");
        }
        if (code >> 16 != ProtocolMajor)
            throw ProxyRejectException.Protocol($"unsupported frontend protocol {code >> 16}.{code & 0xFFFF}: server supports 3.0 to 3.2");
        return new Startup(code, ParseParameters(packet[8..]));
    }

    private static List<KeyValuePair<string, string>> ParseParameters(ReadOnlySpan<byte> body)
    {
        var parameters = new List<KeyValuePair<string, string>>();
        // Name/value pairs of zero-terminated strings, then one more zero.
        while (true)
        {
            if (body.IsEmpty) throw ProxyRejectException.Protocol("invalid startup packet layout: expected terminator as last byte");
            if (body[0] == 0)
            {
                if (body.Length != 1) throw ProxyRejectException.Protocol("invalid startup packet layout: data after the terminator");
                break;
            }
            string name = ReadCString(ref body);
            string value = ReadCString(ref body);
            parameters.Add(new(name, value));
        }
        if (!parameters.Any(p => p.Key == "user")) throw ProxyRejectException.Protocol("no PostgreSQL user name specified in startup packet");
        return parameters;
    }

    private static string ReadCString(ref ReadOnlySpan<byte> body)
    {
        int end = body.IndexOf((byte)0);
        if (end < 0) throw ProxyRejectException.Protocol("invalid startup packet layout: expected terminator as last byte");
        string text;
        try { text = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(body[..end]); }
        catch (DecoderFallbackException) { throw ProxyRejectException.Protocol("invalid byte sequence in startup packet (not UTF-8)"); }
        body = body[(end + 1)..];
        return text;
    }
}
