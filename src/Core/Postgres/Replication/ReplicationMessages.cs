using System.Buffers;
using System.Buffers.Binary;
using Storage.Core.Postgres.Wire;

namespace Storage.Core.Postgres.Replication;

/// <summary>A primary's XLogData: WAL bytes starting at <see cref="Start"/>; the server's WAL ends at <see cref="ServerEnd"/>.</summary>
public readonly record struct XLogData(Lsn Start, Lsn ServerEnd, DateTime ServerClock, ReadOnlySequence<byte> Data);

/// <summary>A primary's keepalive: its WAL end, and whether it wants a status update at once.</summary>
public readonly record struct PrimaryKeepalive(Lsn ServerEnd, DateTime ServerClock, bool ReplyRequested);

/// <summary>A standby's status update: how far it has written, flushed and applied the WAL.</summary>
public readonly record struct StandbyStatus(Lsn Write, Lsn Flush, Lsn Apply, DateTime Clock, bool ReplyRequested);

/// <summary>A standby's hot standby feedback: the oldest transaction (and catalog transaction) it still needs, with epochs.</summary>
public readonly record struct HotStandbyFeedback(DateTime Clock, uint Xmin, uint XminEpoch, uint CatalogXmin, uint CatalogXminEpoch);

/// <summary>
/// The CopyData payloads of PostgreSQL's streaming replication protocol (protocol-replication.html):
/// XLogData ('w') and keepalives ('k') from the primary, status updates ('r') from the standby. Both
/// sides live here: the walproposer is a standby of its compute, a safekeeper a primary of its readers.
/// </summary>
public static class ReplicationMessages
{
    private static readonly DateTime PostgresEpoch = new(2000, 1, 1, 0, 0, 0, DateTimeKind.Utc);
    public const int XLogDataHeaderLength = 1 + 8 + 8 + 8;
    private const int KeepaliveLength = 1 + 8 + 8 + 1;
    private const int StandbyStatusLength = 1 + 8 + 8 + 8 + 8 + 1;

    /// <summary>A timestamp as the protocol sends it: microseconds since 2000-01-01 UTC.</summary>
    public static long ToPostgresTime(DateTime utc) => (utc - PostgresEpoch).Ticks / 10;
    public static DateTime FromPostgresTime(long micros) => PostgresEpoch.AddTicks(micros * 10);

    /// <summary>The kind of a CopyData payload: 'w' XLogData, 'k' keepalive (from a primary), 'r' status, 'h' feedback (from a standby).</summary>
    public static byte Kind(ReadOnlySequence<byte> payload) =>
        payload.IsEmpty ? throw new InvalidDataException("empty CopyData message") : payload.FirstSpan[0];

    public static XLogData ReadXLogData(ReadOnlySequence<byte> payload)
    {
        var reader = new SequenceReader<byte>(payload.Slice(1));
        if (!reader.TryReadBigEndian(out long start) || !reader.TryReadBigEndian(out long end) || !reader.TryReadBigEndian(out long clock))
            throw new InvalidDataException("XLogData shorter than its header");
        return new XLogData(new Lsn((ulong)start), new Lsn((ulong)end), FromPostgresTime(clock), payload.Slice(XLogDataHeaderLength));
    }

    public static PrimaryKeepalive ReadKeepalive(ReadOnlySequence<byte> payload)
    {
        var reader = new SequenceReader<byte>(payload.Slice(1));
        if (!reader.TryReadBigEndian(out long walEnd) || !reader.TryReadBigEndian(out long sent) || !reader.TryRead(out byte reply))
            throw new InvalidDataException("keepalive shorter than 18 bytes");
        return new PrimaryKeepalive(new Lsn((ulong)walEnd), FromPostgresTime(sent), reply != 0);
    }

    /// <summary>A standby's status update ('r').</summary>
    public static StandbyStatus ReadStandbyStatus(ReadOnlySequence<byte> payload)
    {
        var reader = new SequenceReader<byte>(payload.Slice(1));
        if (!reader.TryReadBigEndian(out long write) || !reader.TryReadBigEndian(out long flush) || !reader.TryReadBigEndian(out long apply)
            || !reader.TryReadBigEndian(out long clock) || !reader.TryRead(out byte reply))
            throw new InvalidDataException("standby status update shorter than 34 bytes");
        return new StandbyStatus(new Lsn((ulong)write), new Lsn((ulong)flush), new Lsn((ulong)apply), FromPostgresTime(clock), reply != 0);
    }

    /// <summary>A standby's hot standby feedback ('h').</summary>
    public static HotStandbyFeedback ReadHotStandbyFeedback(ReadOnlySequence<byte> payload)
    {
        var reader = new SequenceReader<byte>(payload.Slice(1));
        if (!reader.TryReadBigEndian(out long clock) || !reader.TryReadBigEndian(out int xmin) || !reader.TryReadBigEndian(out int epoch)
            || !reader.TryReadBigEndian(out int catalogXmin) || !reader.TryReadBigEndian(out int catalogEpoch))
            throw new InvalidDataException("hot standby feedback shorter than 25 bytes");
        return new HotStandbyFeedback(FromPostgresTime(clock), (uint)xmin, (uint)epoch, (uint)catalogXmin, (uint)catalogEpoch);
    }

    /// <summary>A standby status update wrapped in CopyData.</summary>
    public static void WriteStandbyStatus(IBufferWriter<byte> output, in StandbyStatus status)
    {
        var body = PgFraming.WriteHeader(output, (byte)'d', StandbyStatusLength);
        body[0] = (byte)'r';
        BinaryPrimitives.WriteUInt64BigEndian(body[1..], status.Write.Value);
        BinaryPrimitives.WriteUInt64BigEndian(body[9..], status.Flush.Value);
        BinaryPrimitives.WriteUInt64BigEndian(body[17..], status.Apply.Value);
        BinaryPrimitives.WriteInt64BigEndian(body[25..], ToPostgresTime(status.Clock));
        body[33] = status.ReplyRequested ? (byte)1 : (byte)0;
        output.Advance(5 + StandbyStatusLength);
    }

    /// <summary>A primary keepalive wrapped in CopyData.</summary>
    public static void WriteKeepalive(IBufferWriter<byte> output, Lsn serverEnd, DateTime clock, bool replyRequested)
    {
        var body = PgFraming.WriteHeader(output, (byte)'d', KeepaliveLength);
        body[0] = (byte)'k';
        BinaryPrimitives.WriteUInt64BigEndian(body[1..], serverEnd.Value);
        BinaryPrimitives.WriteInt64BigEndian(body[9..], ToPostgresTime(clock));
        body[17] = replyRequested ? (byte)1 : (byte)0;
        output.Advance(5 + KeepaliveLength);
    }

    /// <summary>An XLogData header wrapped in CopyData; the caller writes <paramref name="dataLength"/> WAL bytes after it.</summary>
    public static void WriteXLogDataHeader(IBufferWriter<byte> output, Lsn start, Lsn serverEnd, DateTime clock, int dataLength)
    {
        var span = output.GetSpan(5 + XLogDataHeaderLength);
        span[0] = (byte)'d';
        BinaryPrimitives.WriteInt32BigEndian(span[1..], 4 + XLogDataHeaderLength + dataLength);
        span[5] = (byte)'w';
        BinaryPrimitives.WriteUInt64BigEndian(span[6..], start.Value);
        BinaryPrimitives.WriteUInt64BigEndian(span[14..], serverEnd.Value);
        BinaryPrimitives.WriteInt64BigEndian(span[22..], ToPostgresTime(clock));
        output.Advance(5 + XLogDataHeaderLength);
    }
}
