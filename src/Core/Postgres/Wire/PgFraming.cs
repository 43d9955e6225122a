using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;

namespace Storage.Core.Postgres.Wire;

/// <summary>One PostgreSQL protocol message after start-up: a type byte and a body (the length word is not part of it).</summary>
public readonly record struct PgMessage(byte Type, ReadOnlySequence<byte> Body);

/// <summary>A PostgreSQL ErrorResponse as an exception: the server's SQLSTATE and message.</summary>
public sealed class PostgresErrorException(IReadOnlyDictionary<char, string> fields)
    : Exception($"{fields.GetValueOrDefault('S', "ERROR")} {fields.GetValueOrDefault('C', "?????")}: {fields.GetValueOrDefault('M', "(no message)")}")
{
    public string SqlState { get; } = fields.GetValueOrDefault('C', "");
    public IReadOnlyDictionary<char, string> Fields { get; } = fields;
}

/// <summary>
/// Reads and writes typed protocol messages (type byte, big-endian length word including itself,
/// body) on a pipe. The frontend and backend use the same framing once start-up is over.
/// </summary>
public static class PgFraming
{
    /// <summary>Largest message accepted (PostgreSQL's own walsender sends at most 128 KiB of WAL per message).</summary>
    public const int MaxMessageLength = 64 * 1024 * 1024;

    /// <summary>PostgreSQL's limit on a start-up packet (MAX_STARTUP_PACKET_LENGTH).</summary>
    public const int MaxStartupPacketLength = 10000;

    /// <summary>
    /// The next start-up phase packet (a length word, no type byte), whole; null when the client closed
    /// before sending one (PostgreSQL closes such a connection silently: there is nobody left to tell).
    /// A length outside [8, <see cref="MaxStartupPacketLength"/>] is refused with <paramref name="invalid"/>
    /// before waiting for the body, so garbage or a huge length is refused at once.
    /// </summary>
    public static async ValueTask<byte[]?> ReadStartupPacketAsync(PipeReader reader, Func<string, Exception> invalid, CancellationToken ct)
    {
        while (true)
        {
            var result = await reader.ReadAsync(ct);
            var buffer = result.Buffer;
            if (buffer.Length >= 4)
            {
                int length = LengthWord(buffer);
                if (length < 8 || length > MaxStartupPacketLength) throw invalid("invalid length of startup packet");
                if (buffer.Length >= length)
                {
                    var packet = buffer.Slice(0, length).ToArray();
                    reader.AdvanceTo(buffer.GetPosition(length));
                    return packet;
                }
            }
            if (result.IsCompleted) { reader.AdvanceTo(buffer.End); return null; }
            reader.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    private static int LengthWord(ReadOnlySequence<byte> buffer)
    {
        Span<byte> word = stackalloc byte[4];
        buffer.Slice(0, 4).CopyTo(word);
        return BinaryPrimitives.ReadInt32BigEndian(word);
    }

    /// <summary>
    /// Takes one whole message from the front of <paramref name="buffer"/>; false when it is not all
    /// there yet. A length word outside [4, <see cref="MaxMessageLength"/>] is a protocol violation.
    /// </summary>
    public static bool TryRead(ref ReadOnlySequence<byte> buffer, out PgMessage message)
    {
        message = default;
        if (buffer.Length < 5) return false;
        Span<byte> header = stackalloc byte[5];
        buffer.Slice(0, 5).CopyTo(header);
        int length = BinaryPrimitives.ReadInt32BigEndian(header[1..]);
        if (length < 4 || length > MaxMessageLength)
            throw new InvalidDataException($"protocol violation: message '{(char)header[0]}' claims a length of {length} bytes");
        if (buffer.Length < 1 + length) return false;
        message = new PgMessage(header[0], buffer.Slice(5, length - 4));
        buffer = buffer.Slice(1 + length);
        return true;
    }

    /// <summary>Reads the next whole message; null when the peer closed cleanly between messages.</summary>
    /// <remarks>The message's body is valid until the next read: the caller advances the reader past it.</remarks>
    public static async ValueTask<(PgMessage Message, SequencePosition Consumed)?> ReadAsync(PipeReader reader, CancellationToken ct)
    {
        while (true)
        {
            var result = await reader.ReadAsync(ct);
            var buffer = result.Buffer;
            if (TryRead(ref buffer, out var message)) return (message, buffer.Start);
            if (result.IsCompleted)
            {
                if (result.Buffer.IsEmpty) return null;
                throw new EndOfStreamException($"the connection closed inside a message ({result.Buffer.Length} bytes of it arrived)");
            }
            reader.AdvanceTo(result.Buffer.Start, result.Buffer.End);
        }
    }

    /// <summary>Writes the type byte and length word of a message with a body of <paramref name="bodyLength"/> bytes.</summary>
    public static Span<byte> WriteHeader(IBufferWriter<byte> output, byte type, int bodyLength)
    {
        var span = output.GetSpan(5 + bodyLength);
        span[0] = type;
        BinaryPrimitives.WriteInt32BigEndian(span[1..], bodyLength + 4);
        return span.Slice(5, bodyLength);
    }

    /// <summary>A simple Query ('Q') message.</summary>
    public static void WriteQuery(IBufferWriter<byte> output, string sql)
    {
        int n = System.Text.Encoding.UTF8.GetByteCount(sql);
        var body = WriteHeader(output, (byte)'Q', n + 1);
        System.Text.Encoding.UTF8.GetBytes(sql, body);
        body[n] = 0;
        output.Advance(5 + n + 1);
    }

    /// <summary>The frontend's StartupMessage (protocol 3.0) with the given parameters.</summary>
    public static void WriteStartup(IBufferWriter<byte> output, IReadOnlyList<(string Name, string Value)> parameters)
    {
        int length = 4 + 4 + 1;
        foreach (var (name, value) in parameters)
            length += System.Text.Encoding.UTF8.GetByteCount(name) + 1 + System.Text.Encoding.UTF8.GetByteCount(value) + 1;
        var span = output.GetSpan(length);
        BinaryPrimitives.WriteInt32BigEndian(span, length);
        BinaryPrimitives.WriteInt32BigEndian(span[4..], 3 << 16);
        int at = 8;
        foreach (var (name, value) in parameters)
        {
            at += System.Text.Encoding.UTF8.GetBytes(name, span[at..]);
            span[at++] = 0;
            at += System.Text.Encoding.UTF8.GetBytes(value, span[at..]);
            span[at++] = 0;
        }
        span[at] = 0;
        output.Advance(length);
    }

    /// <summary>Throws the server's error when <paramref name="message"/> is an ErrorResponse.</summary>
    public static void ThrowIfError(in PgMessage message)
    {
        if (message.Type == (byte)'E') throw new PostgresErrorException(ErrorResponse.ParseFields(message.Body.ToArray()));
    }
}
