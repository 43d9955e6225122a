using System.Buffers;
using System.Buffers.Binary;
using System.Text;

namespace Storage.Core.Postgres.Wire;

/// <summary>
/// Builds a backend ErrorResponse ('E') message, as PostgreSQL sends it before closing, and reads
/// one (the proxy, the walproposer's replication client and the safekeepers' walsender share it).
/// </summary>
public static class ErrorResponse
{
    /// <summary>Longest ErrorResponse <see cref="TryPeek"/> waits for; a longer one is relayed unread.</summary>
    private const int MaxPeekLength = 16 * 1024;

    public static byte[] Build(string severity, string sqlState, string message, string? hint = null)
    {
        var fields = new List<(char Code, string Value)>
        {
            ('S', severity), ('V', severity), ('C', sqlState), ('M', message),
        };
        if (hint != null) fields.Add(('H', hint));

        int bodyLength = 4 + 1; // length word + the terminating zero
        foreach (var (_, value) in fields) bodyLength += 1 + Encoding.UTF8.GetByteCount(value) + 1;
        var bytes = new byte[1 + bodyLength];
        bytes[0] = (byte)'E';
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(1), bodyLength);
        int at = 5;
        foreach (var (code, value) in fields)
        {
            bytes[at++] = (byte)code;
            at += Encoding.UTF8.GetBytes(value, bytes.AsSpan(at));
            bytes[at++] = 0;
        }
        bytes[at] = 0;
        return bytes;
    }

    /// <summary>
    /// Looks at the message <paramref name="buffer"/> starts with, consuming nothing: false while an
    /// ErrorResponse is still arriving (or nothing has); true with its <paramref name="fields"/> once it
    /// is whole; true with null fields when the buffer starts with another message (or an oversized one).
    /// </summary>
    public static bool TryPeek(ReadOnlySequence<byte> buffer, out Dictionary<char, string>? fields)
    {
        fields = null;
        if (buffer.IsEmpty) return false;
        if (buffer.FirstSpan[0] != (byte)'E') return true;
        if (buffer.Length < 5) return false;
        Span<byte> header = stackalloc byte[5];
        buffer.Slice(0, 5).CopyTo(header);
        int length = BinaryPrimitives.ReadInt32BigEndian(header[1..]);
        if (length < 4 || length > MaxPeekLength) return true;
        if (buffer.Length < 1 + length) return false;
        fields = ParseFields(buffer.Slice(5, length - 4).ToArray());
        return true;
    }

    /// <summary>The fields of an ErrorResponse body (after type and length), by field code.</summary>
    public static Dictionary<char, string> ParseFields(ReadOnlySpan<byte> body)
    {
        var fields = new Dictionary<char, string>();
        while (body.Length > 0 && body[0] != 0)
        {
            char code = (char)body[0];
            int end = body[1..].IndexOf((byte)0);
            if (end < 0) break;
            fields[code] = Encoding.UTF8.GetString(body.Slice(1, end));
            body = body[(end + 2)..];
        }
        return fields;
    }
}
