namespace Storage.Core.Wal;

/// <summary>
/// Real PostgreSQL 15 WAL for demos and tests: transactions of one XLOG NOOP record of random size
/// (so records cross page and segment boundaries) followed by a commit record with the current time.
/// </summary>
public sealed class SyntheticTransactions(WalBuilder builder, Random random)
{
    private uint _xid = 1000;

    public WalBuilder Builder => builder;

    /// <summary>Appends whole transactions until at least <paramref name="bytes"/> more WAL exists; returns the new WAL.</summary>
    public byte[] Next(int bytes)
    {
        var target = builder.EndLsn + (ulong)bytes;
        while (builder.EndLsn < target)
        {
            builder.AppendNoop(64 + random.Next(0, 3000));
            builder.AppendCommit(_xid++, DateTimeOffset.UtcNow);
        }
        return builder.TakeBytes();
    }
}
