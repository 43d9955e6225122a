using Storage.Testing;
using Storage.Core;
using Storage.Core.Api;
using Grpc.Core;
using Storage.Core.Rpc;
using Storage.Core.Wal;
using Storage.Proposer;
using Storage.Proto.Safekeeper;

namespace Storage.Safekeeper.Tests.Integration;

/// <summary>Three safekeeper processes and a proposer streaming real PostgreSQL WAL; SIGKILLs mid-stream.</summary>
[Collection("processes")]
public class SafekeeperClusterTests
{
    private static readonly TimeSpan Bounded = TimeSpan.FromSeconds(90); // fsync alone has taken > 10 s on a loaded machine

    [Fact]
    public async Task Commit_survives_one_failure_stops_without_quorum_and_resumes_with_catch_up()
    {
        await using var cluster = await SafekeeperCluster.StartAsync();
        await using var proposer = cluster.NewProposer();
        proposer.Start();
        var start = await proposer.WaitElectedAsync(new CancellationTokenSource(Bounded).Token);
        Assert.Equal(SafekeeperCluster.TimelineStart, start);

        var source = new SyntheticTransactions(new WalBuilder(start), new Random(7));
        var streamed = new MemoryStream();
        Lsn Append(int bytes)
        {
            var wal = source.Next(bytes);
            streamed.Write(wal);
            return proposer.Append(wal);
        }

        // All three up.
        for (int i = 0; i < 20; i++) Append(32 * 1024);
        var end = Append(8192);
        await CommittedAsync(proposer, end, cluster);

        // SIGKILL one safekeeper mid-stream: commits keep advancing on the other two.
        var midStream = Append(64 * 1024);
        cluster.Kill(0);
        for (int i = 0; i < 20; i++) end = Append(32 * 1024);
        await CommittedAsync(proposer, end, cluster);
        Assert.True(proposer.CommitLsn >= end && end > midStream);

        // Kill a second one: no quorum, so nothing more is reported committed.
        var committedBefore = proposer.CommitLsn;
        cluster.Kill(1);
        var waiting = Append(64 * 1024);
        var wait = proposer.WaitForCommitAsync(waiting);
        await Task.Delay(TimeSpan.FromSeconds(2));
        Assert.False(wait.IsCompleted, "a commit was reported with only one safekeeper alive");
        Assert.Equal(committedBefore, proposer.CommitLsn);
        var survivor = await cluster.StatusAsync(2);
        Assert.True(new Lsn(survivor.CommitLsn) <= committedBefore, $"the survivor claims commit {new Lsn(survivor.CommitLsn)} beyond {committedBefore}");

        // Bring both back: the waiting commit completes, and the restarted ones catch up.
        await cluster.StartAsync(0);
        await cluster.StartAsync(1);
        await wait.WaitAsync(Bounded);
        end = Append(8192);
        await CommittedAsync(proposer, end, cluster);
        await WaitUntilAsync(async () =>
        {
            for (int i = 0; i < 3; i++)
                if (new Lsn((await cluster.StatusAsync(i)).FlushLsn) < end) return false;
            return true;
        }, cluster, () => DescribeAsync(cluster, proposer));

        // Every safekeeper holds exactly the bytes streamed, and they decode as PostgreSQL WAL.
        for (int i = 0; i < 3; i++)
        {
            var held = await ReadWalAsync(cluster, i, start, end);
            Assert.True(streamed.ToArray().AsSpan().SequenceEqual(held), $"safekeeper {i + 1} holds different WAL");
            var decoder = new WalDecoder(start);
            decoder.Feed(held);
            int records = 0;
            while (decoder.TryDecodeNext(out var record)) { records++; Assert.True(record!.EndLsn <= end); }
            Assert.True(records > 100, $"only {records} records decoded from safekeeper {i + 1}");
        }
    }

    [Fact]
    public async Task A_proposer_with_a_higher_term_fences_the_first()
    {
        await using var cluster = await SafekeeperCluster.StartAsync();
        await using var first = cluster.NewProposer();
        first.Start();
        var start = await first.WaitElectedAsync(new CancellationTokenSource(Bounded).Token);
        var source = new SyntheticTransactions(new WalBuilder(start), new Random(7));
        var end = first.Append(source.Next(100_000));
        await CommittedAsync(first, end, cluster);

        await using var second = cluster.NewProposer();
        second.Start();
        var secondStart = await second.WaitElectedAsync(new CancellationTokenSource(Bounded).Token);
        Assert.True(second.Term > first.Term);
        Assert.Equal(end, secondStart); // the new term starts exactly where the committed WAL ends

        // The first proposer can no longer get anything committed; it learns it is fenced.
        await Assert.ThrowsAsync<ProposerFencedException>(async () =>
        {
            var stale = first.Append(new byte[8192]); // refused at once if it already knows
            await first.WaitForCommitAsync(stale).WaitAsync(Bounded);
        });
        var reason = await first.Fenced.WaitAsync(Bounded);
        Assert.Contains("term", reason);

        // The second one commits new WAL after the first one's.
        var next = second.Append(source.Next(50_000));
        await CommittedAsync(second, next, cluster);
        // A quorum acknowledged; the third safekeeper learns the new term when the proposer reaches it.
        for (int i = 0; i < 3; i++)
        {
            int index = i;
            await WaitUntilAsync(async () => (await cluster.StatusAsync(index)).Term == second.Term, cluster,
                () => DescribeAsync(cluster, second));
        }
    }

    [Fact]
    public async Task All_safekeepers_killed_and_restarted_lose_no_committed_wal()
    {
        await using var cluster = await SafekeeperCluster.StartAsync();
        Lsn committed;
        ulong term;
        await using (var proposer = cluster.NewProposer())
        {
            proposer.Start();
            var start = await proposer.WaitElectedAsync(new CancellationTokenSource(Bounded).Token);
            var source = new SyntheticTransactions(new WalBuilder(start), new Random(7));
            var end = start;
            for (int i = 0; i < 50; i++) end = proposer.Append(source.Next(40_000)); // crosses a segment
            committed = await CommittedAsync(proposer, end, cluster);
            term = proposer.Term;
            for (int i = 0; i < 3; i++) cluster.Kill(i); // SIGKILL, no clean shutdown
        }
        for (int i = 0; i < 3; i++) await cluster.StartAsync(i);

        await using var next = cluster.NewProposer();
        next.Start();
        var nextStart = await next.WaitElectedAsync(new CancellationTokenSource(Bounded).Token);
        Assert.True(nextStart >= committed, $"after restarting every safekeeper the WAL ends at {nextStart}, below the committed {committed}");
        Assert.True(next.Term > term);
    }

    private static async Task<byte[]> ReadWalAsync(SafekeeperCluster cluster, int i, Lsn from, Lsn to)
    {
        var bytes = new MemoryStream();
        await SafekeeperClient.ReadWalAsync(cluster.Uris[i], cluster.Key, from, to, 0, bytes, Bounded);
        return bytes.ToArray();
    }

    /// <summary>Waits (bounded) for a commit; on time-out the safekeepers' logs explain why.</summary>
    private static async Task<Lsn> CommittedAsync(WalProposer proposer, Lsn lsn, SafekeeperCluster cluster)
    {
        try { return await proposer.WaitForCommitAsync(lsn).WaitAsync(Bounded); }
        catch (TimeoutException)
        {
            throw new TimeoutException($"commit did not reach {lsn}: {await DescribeAsync(cluster, proposer)}");
        }
    }

    /// <summary>What the proposer and each safekeeper say, with the safekeepers' last log lines.</summary>
    private static async Task<string> DescribeAsync(SafekeeperCluster cluster, WalProposer proposer)
    {
        var held = new List<string>();
        for (int i = 0; i < 3; i++)
        {
            try { var s = await cluster.StatusAsync(i); held.Add($"sk{i + 1}: term {s.Term} flush {new Lsn(s.FlushLsn)} commit {new Lsn(s.CommitLsn)}"); }
            catch (RpcException e) { held.Add($"sk{i + 1}: {e.StatusCode}"); }
        }
        return $"proposer end {proposer.EndLsn}, commit {proposer.CommitLsn}, acked flushes {string.Join(", ", proposer.SafekeeperFlushLsns)}; safekeepers say {string.Join("; ", held)}\n{cluster.Logs()}";
    }

    internal static async Task WaitUntilAsync(Func<Task<bool>> condition, SafekeeperCluster cluster, Func<Task<string>> describe)
    {
        var deadline = DateTime.UtcNow + Bounded;
        while (DateTime.UtcNow < deadline)
        {
            if (await condition()) return;
            await Task.Delay(100);
        }
        throw new TimeoutException("condition not met in time: " + await describe());
    }
}
