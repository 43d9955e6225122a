using Storage.Core;
using Storage.Core.Wal;

namespace Storage.Safekeeper.Bench;

/// <summary>
/// Real PostgreSQL 15 WAL (XLOG NOOP records, page headers and CRCs included), generated up front
/// from the proposer's start LSN so that building it is not part of any measurement, and handed
/// out in fixed-size chunks. Chunk boundaries need not fall on record boundaries: WAL is a byte
/// stream to the safekeepers.
/// </summary>
public sealed class WalStream
{
    // A NOOP of ~4 KB: records cross page boundaries regularly, as real WAL does.
    private const int RecordLength = 4000;
    private readonly byte[] _bytes;
    private int _taken;

    public WalStream(Lsn start, long bytes)
    {
        var builder = new WalBuilder(start);
        var output = new MemoryStream((int)bytes + 2 * RecordLength);
        while (output.Length < bytes)
        {
            while (builder.EndLsn - builder.PendingStartLsn < 1024 * 1024) builder.AppendNoop(RecordLength);
            output.Write(builder.TakeBytes());
        }
        _bytes = output.GetBuffer();
        Length = bytes;
    }

    public long Length { get; }

    /// <summary>The first <paramref name="size"/> bytes generated (to compare with what safekeepers return).</summary>
    public ReadOnlySpan<byte> Prefix(int size) => _bytes.AsSpan(0, (int)Math.Min(size, Length));

    /// <summary>The next <paramref name="size"/> bytes of WAL.</summary>
    public ReadOnlySpan<byte> Next(int size)
    {
        if (_taken + size > Length) throw new InvalidOperationException("the benchmark used more WAL than it generated");
        var chunk = _bytes.AsSpan(_taken, size);
        _taken += size;
        return chunk;
    }
}
