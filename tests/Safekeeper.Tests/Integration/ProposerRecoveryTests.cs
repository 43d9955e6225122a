using Storage.Core;
using Storage.Core.Api;
using Grpc.Core;
using Storage.Core.Rpc;
using Storage.Core.Wal;
using Storage.Proposer;
using Storage.Testing;

namespace Storage.Safekeeper.Tests.Integration;

/// <summary>A lagging safekeeper is caught up only with WAL that decodes: damaged WAL on a peer never spreads.</summary>
public sealed class ProposerRecoveryTests
{
    private static readonly TimeSpan Bounded = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Damaged_wal_on_the_donor_is_not_copied_to_a_lagging_safekeeper()
    {
        await using var cluster = await SafekeeperCluster.StartAsync();
        cluster.Kill(2); // sk3 misses what comes next

        Lsn start, end;
        await using (var first = cluster.NewProposer())
        {
            first.Start();
            start = await first.WaitElectedAsync(new CancellationTokenSource(Bounded).Token);
            var source = new SyntheticTransactions(new WalBuilder(start), new Random(3));
            end = start;
            for (int i = 0; i < 10; i++) end = first.Append(source.Next(30_000));
            await first.WaitForCommitAsync(end).WaitAsync(Bounded);
        }

        // sk1's copy goes bad in the middle (a bit flip on its disk); only it can serve sk3 while sk2 is down.
        Corrupt(cluster, 0, start + 100_000UL);
        cluster.Kill(1);
        await cluster.StartAsync(2);

        await using var second = cluster.NewProposer();
        second.Start();
        var elected = await second.WaitElectedAsync(new CancellationTokenSource(Bounded).Token);
        Assert.Equal(end, elected);
        var more = new SyntheticTransactions(new WalBuilder(elected), new Random(4));
        var newEnd = second.Append(more.Next(20_000));

        // With sk2 back, sk3 is caught up from it, and the commit goes on.
        await cluster.StartAsync(1);
        await second.WaitForCommitAsync(newEnd).WaitAsync(Bounded);
        await Eventually.ReachAsync(() => cluster.StatusAsync(2), s => s.FlushLsn >= newEnd.Value, Bounded, cluster.Logs);

        var good = await ReadAsync(cluster, 1, start, newEnd);
        var caughtUp = await ReadAsync(cluster, 2, start, newEnd);
        Assert.True(good.SequenceEqual(caughtUp), "sk3 holds WAL that differs from sk2's good copy");
        WalRecordEnds.Find(start, good.AsSpan(0, (int)(end - start))); // and it is WAL that decodes
    }

    /// <summary>Flips one byte of safekeeper <paramref name="i"/>'s WAL file at <paramref name="lsn"/>.</summary>
    private static void Corrupt(SafekeeperCluster cluster, int i, Lsn lsn)
    {
        var geometry = WalGeometry.Default;
        var name = geometry.SegmentFileName(1, geometry.SegmentNumber(lsn));
        var path = new[] { name, name + ".partial" }.Select(n => Path.Combine(cluster.TimelineDir(i), n)).First(File.Exists);
        using var file = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        file.Position = geometry.SegmentOffset(lsn);
        int b = file.ReadByte();
        file.Position = geometry.SegmentOffset(lsn);
        file.WriteByte((byte)(b ^ 0xFF));
    }

    private static async Task<byte[]> ReadAsync(SafekeeperCluster cluster, int i, Lsn from, Lsn to)
    {
        var bytes = new MemoryStream();
        var channel = cluster.Uris[i];
        await SafekeeperClient.ReadWalAsync(channel, cluster.Key, from, to, 0, bytes, Bounded);
        return bytes.ToArray();
    }
}
