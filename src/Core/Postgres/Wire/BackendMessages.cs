using System.Buffers;
using System.Buffers.Binary;
using System.Text;

namespace Storage.Core.Postgres.Wire;

/// <summary>
/// Writes the backend messages a small PostgreSQL-protocol server needs (the safekeepers'
/// walsender): authentication requests, parameter status, result sets of text columns, command
/// completion, ReadyForQuery and the CopyBoth start and end (protocol-message-formats.html).
/// </summary>
public static class BackendMessages
{
    /// <summary>The type OIDs of the columns we send (pg_type.dat).</summary>
    public const int TextOid = 25, Int4Oid = 23, Int8Oid = 20;

    /// <summary>'N' or 'S': the one-byte answer to an SSLRequest or GSSENCRequest.</summary>
    public static void WriteEncryptionRefused(IBufferWriter<byte> output)
    {
        output.GetSpan(1)[0] = (byte)'N';
        output.Advance(1);
    }

    /// <summary>AuthenticationOk (0), AuthenticationCleartextPassword (3), ...</summary>
    public static void WriteAuthentication(IBufferWriter<byte> output, int code)
    {
        var body = PgFraming.WriteHeader(output, (byte)'R', 4);
        BinaryPrimitives.WriteInt32BigEndian(body, code);
        output.Advance(5 + 4);
    }

    public const int AuthenticationOk = 0, AuthenticationCleartextPassword = 3;

    public static void WriteParameterStatus(IBufferWriter<byte> output, string name, string value) =>
        WriteCStrings(output, (byte)'S', name, value);

    public static void WriteBackendKeyData(IBufferWriter<byte> output, int processId, int secret)
    {
        var body = PgFraming.WriteHeader(output, (byte)'K', 8);
        BinaryPrimitives.WriteInt32BigEndian(body, processId);
        BinaryPrimitives.WriteInt32BigEndian(body[4..], secret);
        output.Advance(5 + 8);
    }

    /// <summary>ReadyForQuery, idle ('I').</summary>
    public static void WriteReadyForQuery(IBufferWriter<byte> output)
    {
        var body = PgFraming.WriteHeader(output, (byte)'Z', 1);
        body[0] = (byte)'I';
        output.Advance(5 + 1);
    }

    /// <summary>A RowDescription of text-format columns with the given names and type OIDs.</summary>
    public static void WriteRowDescription(IBufferWriter<byte> output, IReadOnlyList<(string Name, int TypeOid)> columns)
    {
        int length = 2;
        foreach (var (name, _) in columns) length += Encoding.UTF8.GetByteCount(name) + 1 + 18;
        var body = PgFraming.WriteHeader(output, (byte)'T', length);
        BinaryPrimitives.WriteInt16BigEndian(body, (short)columns.Count);
        int at = 2;
        foreach (var (name, oid) in columns)
        {
            at += Encoding.UTF8.GetBytes(name, body[at..]);
            body[at++] = 0;
            BinaryPrimitives.WriteInt32BigEndian(body[at..], 0); // table OID
            BinaryPrimitives.WriteInt16BigEndian(body[(at + 4)..], 0); // column number
            BinaryPrimitives.WriteInt32BigEndian(body[(at + 6)..], oid);
            BinaryPrimitives.WriteInt16BigEndian(body[(at + 10)..], oid == Int8Oid ? (short)8 : oid == Int4Oid ? (short)4 : (short)-1);
            BinaryPrimitives.WriteInt32BigEndian(body[(at + 12)..], -1); // type modifier
            BinaryPrimitives.WriteInt16BigEndian(body[(at + 16)..], 0); // text format
            at += 18;
        }
        output.Advance(5 + length);
    }

    /// <summary>A DataRow of text values (null is SQL NULL).</summary>
    public static void WriteDataRow(IBufferWriter<byte> output, IReadOnlyList<string?> values)
    {
        int length = 2;
        foreach (var value in values) length += 4 + (value is null ? 0 : Encoding.UTF8.GetByteCount(value));
        var body = PgFraming.WriteHeader(output, (byte)'D', length);
        BinaryPrimitives.WriteInt16BigEndian(body, (short)values.Count);
        int at = 2;
        foreach (var value in values)
        {
            if (value is null) { BinaryPrimitives.WriteInt32BigEndian(body[at..], -1); at += 4; continue; }
            int n = Encoding.UTF8.GetBytes(value, body[(at + 4)..]);
            BinaryPrimitives.WriteInt32BigEndian(body[at..], n);
            at += 4 + n;
        }
        output.Advance(5 + length);
    }

    public static void WriteCommandComplete(IBufferWriter<byte> output, string tag) => WriteCStrings(output, (byte)'C', tag);

    public static void WriteEmptyQueryResponse(IBufferWriter<byte> output) => WriteEmpty(output, (byte)'I');

    /// <summary>CopyBothResponse: binary copy with no columns, as a walsender starts streaming.</summary>
    public static void WriteCopyBothResponse(IBufferWriter<byte> output)
    {
        var body = PgFraming.WriteHeader(output, (byte)'W', 3);
        body[0] = 0;
        BinaryPrimitives.WriteInt16BigEndian(body[1..], 0);
        output.Advance(5 + 3);
    }

    public static void WriteCopyDone(IBufferWriter<byte> output) => WriteEmpty(output, (byte)'c');

    public static void WriteError(IBufferWriter<byte> output, string severity, string sqlState, string message, string? hint = null)
    {
        var bytes = ErrorResponse.Build(severity, sqlState, message, hint);
        output.Write(bytes);
    }

    private static void WriteEmpty(IBufferWriter<byte> output, byte type)
    {
        PgFraming.WriteHeader(output, type, 0);
        output.Advance(5);
    }

    private static void WriteCStrings(IBufferWriter<byte> output, byte type, params string[] values)
    {
        int length = 0;
        foreach (var v in values) length += Encoding.UTF8.GetByteCount(v) + 1;
        var body = PgFraming.WriteHeader(output, type, length);
        int at = 0;
        foreach (var v in values)
        {
            at += Encoding.UTF8.GetBytes(v, body[at..]);
            body[at++] = 0;
        }
        output.Advance(5 + length);
    }
}
