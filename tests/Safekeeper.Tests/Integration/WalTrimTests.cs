using System.Globalization;
using Storage.Core;
using Storage.Core.Api;
using Grpc.Core;
using Storage.Core.Rpc;
using Storage.Core.Wal;
using Storage.Proposer;
using Storage.Proto.Safekeeper;
using Storage.Testing;

namespace Storage.Safekeeper.Tests.Integration;

/// <summary>
/// Pageserver feedback and WAL trimming on real safekeeper processes: segment files stay bounded
/// while WAL flows, reads of trimmed WAL fail clearly, state survives SIGKILL, and a safekeeper
/// that was down while its peers trimmed rejoins the quorum.
/// </summary>
[Collection("processes")]
public sealed class WalTrimTests : IDisposable
{
    private static readonly TimeSpan Bounded = TimeSpan.FromSeconds(60);
    // Feedback waits for the timeline's flush gate (shared with trim, offload and WAL fsyncs) and
    // fsyncs the control file: on a loaded machine more than the 5 s default deadline.
    private static readonly TimeSpan FeedbackTimeout = TimeSpan.FromSeconds(30);
    private static readonly WalGeometry G = WalGeometry.Default;
    private readonly string _remote = Directory.CreateTempSubdirectory("remote-wal-").FullName;

    private string[] Options => ["--remote-storage", _remote, "--offload-interval-ms", "200", "--trim-interval-ms", "200"];

    /// <summary>A proposer writing synthetic WAL, committed before each step returns.</summary>
    private sealed class Writer(WalProposer proposer, Lsn start)
    {
        private readonly SyntheticTransactions _source = new(new WalBuilder(start), new Random(11));
        public Lsn End { get; private set; } = start;

        public async Task<Lsn> WritePastAsync(Lsn target)
        {
            while (End < target) End = proposer.Append(_source.Next(256 * 1024));
            await proposer.WaitForCommitAsync(End).WaitAsync(Bounded);
            End = proposer.Append(_source.Next(100)); // carries the commit LSN to the safekeepers
            return await proposer.WaitForCommitAsync(End).WaitAsync(Bounded);
        }
    }

    [Fact]
    public async Task Trimming_keeps_segment_files_bounded_refuses_trimmed_reads_and_survives_sigkill()
    {
        await using var cluster = await SafekeeperCluster.StartAsync(extraArguments: Options);
        await using var proposer = cluster.NewProposer();
        proposer.Start();
        var start = await proposer.WaitElectedAsync(new CancellationTokenSource(Bounded).Token);
        var writer = new Writer(proposer, start);
        ulong first = G.SegmentNumber(start);

        // Nothing is trimmed before a pageserver reports.
        var end = await writer.WritePastAsync(G.SegmentStart(first + 2) + 1000L);
        for (int i = 0; i < 3; i++) await FlushedAsync(cluster, i, end); // a quorum committed; the third may still be writing
        await Task.Delay(600); // three trim rounds, which must delete nothing
        Assert.All(Enumerable.Range(0, 3), i => Assert.True(SegmentFiles(cluster, i) >= 3));

        // Six segments flow; after each the pageserver reports and every safekeeper keeps only
        // the segment holding the horizon.
        for (ulong s = 3; s <= 6; s++)
        {
            end = await writer.WritePastAsync(G.SegmentStart(first + s) + 1000L);
            var keepFrom = G.SegmentStart(first + s);
            await SafekeeperClusterTests.WaitUntilAsync(async () =>
            {
                for (int i = 0; i < 3; i++)
                {
                    var st = await SafekeeperClient.ReportPageserverFeedbackAsync(cluster.Uris[i], cluster.Key, "ps-1", end, end, FeedbackTimeout);
                    if (new Lsn(st.LocalStartLsn) < keepFrom || SegmentFiles(cluster, i) > 2) return false;
                    Assert.True(new Lsn(st.BackupLsn) >= keepFrom && new Lsn(st.RemoteConsistentLsn) <= new Lsn(st.CommitLsn));
                }
                return true;
            }, cluster, () => Task.FromResult($"segment files {string.Join(",", Enumerable.Range(0, 3).Select(i => SegmentFiles(cluster, i)))}\n{cluster.Logs()}"));
        }
        var status = await cluster.StatusAsync(0);
        var localStart = new Lsn(status.LocalStartLsn);
        Assert.Equal(G.SegmentStart(first + 6), localStart);

        // Reading trimmed WAL fails clearly, for pageservers and proposers alike; WAL from the local start reads.
        var channel = cluster.Uris[0];
        {
            foreach (var term in new[] { 0UL, proposer.Term })
            {
                var e = await Assert.ThrowsAsync<RpcException>(() =>
                    SafekeeperClient.ReadWalAsync(channel, cluster.Key, start, localStart, term, new MemoryStream(), Bounded));
                Assert.Equal(StatusCode.FailedPrecondition, e.StatusCode);
                Assert.Equal(localStart, e.FirstAvailableLsn());
                Assert.Contains($"first available LSN {localStart}", e.Status.Detail);
            }
            var held = new MemoryStream();
            await SafekeeperClient.ReadWalAsync(channel, cluster.Key, localStart, end, 0, held, Bounded);
            Assert.Equal((long)(end - localStart), held.Length);
        }

        // Feedback never moves backwards, and is clamped to the commit LSN.
        var reported = new Lsn(status.RemoteConsistentLsn);
        var back = await SafekeeperClient.ReportPageserverFeedbackAsync(cluster.Uris[0], cluster.Key, "ps-2", start + 8UL, timeout: FeedbackTimeout);
        Assert.Equal(reported, new Lsn(back.RemoteConsistentLsn));
        var ahead = await SafekeeperClient.ReportPageserverFeedbackAsync(cluster.Uris[0], cluster.Key, "ps-1", new Lsn(0xFF_0000_0000), timeout: FeedbackTimeout);
        Assert.Equal(ahead.CommitLsn, ahead.RemoteConsistentLsn);

        var metrics = await new HttpClient().GetStringAsync(cluster.MetricsUri(0));
        Assert.True(MetricValue(metrics, "safekeeper_wal_segments_deleted_total") >= 5, metrics);
        Assert.Contains($"safekeeper_remote_consistent_lsn{{tenant_id=\"{cluster.TenantId}\",timeline_id=\"{cluster.TimelineId}\"}} {ahead.RemoteConsistentLsn}", metrics);

        // SIGKILL with the leading segments gone: everything comes back as it was, and WAL flows on.
        await FlushedAsync(cluster, 2, end);
        var before = await cluster.StatusAsync(2);
        cluster.Kill(2);
        await cluster.StartAsync(2);
        var after = await cluster.StatusAsync(2);
        Assert.Equal(before.RemoteConsistentLsn, after.RemoteConsistentLsn);
        Assert.Equal(before.LocalStartLsn, after.LocalStartLsn);
        Assert.Equal(before.FlushLsn, after.FlushLsn);
        end = await writer.WritePastAsync(end + 100_000L);
        await FlushedAsync(cluster, 2, end);
    }

    [Fact]
    public async Task Feedback_for_unknown_or_malformed_timelines_is_refused_clearly()
    {
        await using var cluster = await SafekeeperCluster.StartAsync(extraArguments: Options);
        var uri = cluster.Uris[0];
        async Task<StatusCode> Refused(PageserverFeedback f) =>
            (await Assert.ThrowsAsync<RpcException>(() => cluster.Client(0).ReportPageserverFeedbackAsync(f, deadline: SafekeeperCluster.Deadline()).ResponseAsync)).StatusCode;

        var unknown = await Assert.ThrowsAsync<RpcException>(() =>
            SafekeeperClient.ReportPageserverFeedbackAsync(uri, SafekeeperClient.Key(TimelineIds.New(), TimelineIds.New()), "ps-1", new Lsn(0x200_0000)));
        Assert.Equal(StatusCode.NotFound, unknown.StatusCode);
        Assert.Equal(StatusCode.InvalidArgument, await Refused(new PageserverFeedback { PageserverId = "ps-1", RemoteConsistentLsn = 1 }));
        Assert.Equal(StatusCode.InvalidArgument, await Refused(new PageserverFeedback { Timeline = SafekeeperClient.Key("xyz", cluster.TimelineId), PageserverId = "ps-1", RemoteConsistentLsn = 1 }));
        Assert.Equal(StatusCode.InvalidArgument, await Refused(new PageserverFeedback { Timeline = cluster.Key, RemoteConsistentLsn = 0x200_0000 }));
        Assert.Equal(StatusCode.InvalidArgument, await Refused(new PageserverFeedback { Timeline = cluster.Key, PageserverId = "ps-1" }));
        Assert.Equal(0UL, (await cluster.StatusAsync(0)).RemoteConsistentLsn);
    }

    [Fact]
    public async Task A_safekeeper_down_while_its_peers_trimmed_starts_its_wal_later_and_keeps_the_quorum()
    {
        await using var cluster = await SafekeeperCluster.StartAsync(extraArguments: Options);
        await using var proposer = cluster.NewProposer();
        proposer.Start();
        var start = await proposer.WaitElectedAsync(new CancellationTokenSource(Bounded).Token);
        var writer = new Writer(proposer, start);
        ulong first = G.SegmentNumber(start);
        var end = await writer.WritePastAsync(start + 100_000L);
        await FlushedAsync(cluster, 2, end);

        // sk3 is down while four segments flow and the other two trim past its WAL end.
        var lagging = new Lsn((await cluster.StatusAsync(2)).FlushLsn);
        cluster.Kill(2);
        end = await writer.WritePastAsync(G.SegmentStart(first + 4) + 1000L);
        await SafekeeperClusterTests.WaitUntilAsync(async () =>
        {
            for (int i = 0; i < 2; i++)
            {
                var st = await SafekeeperClient.ReportPageserverFeedbackAsync(cluster.Uris[i], cluster.Key, "ps-1", end, end, FeedbackTimeout);
                if (new Lsn(st.LocalStartLsn) <= G.SegmentStart(G.SegmentNumber(lagging) + 1)) return false;
            }
            return true;
        }, cluster, () => Task.FromResult(cluster.Logs()));

        // Back up, it cannot recover its gap from anyone: it starts its WAL where they still hold WAL.
        await cluster.StartAsync(2);
        end = await writer.WritePastAsync(end + 200_000L);
        await FlushedAsync(cluster, 2, end);
        var rejoined = await cluster.StatusAsync(2);
        var peer = await cluster.StatusAsync(1);
        Assert.True(new Lsn(rejoined.LocalStartLsn) > lagging);
        Assert.True(rejoined.LocalStartLsn >= peer.LocalStartLsn);
        Assert.Equal(await ReadAsync(cluster, 1, new Lsn(rejoined.LocalStartLsn), end), await ReadAsync(cluster, 2, new Lsn(rejoined.LocalStartLsn), end));
        Assert.True(SegmentFiles(cluster, 2) <= 2, "the rejoined safekeeper kept its old segments");

        // Another one dies: sk3 is now half of the quorum, and commits go on.
        cluster.Kill(0);
        end = await writer.WritePastAsync(end + 300_000L);
        Assert.True(proposer.CommitLsn >= end);
        Assert.True(new Lsn((await cluster.StatusAsync(2)).FlushLsn) >= end);
    }

    private static async Task<byte[]> ReadAsync(SafekeeperCluster cluster, int i, Lsn from, Lsn to)
    {
        var channel = cluster.Uris[i];
        var bytes = new MemoryStream();
        await SafekeeperClient.ReadWalAsync(channel, cluster.Key, from, to, 0, bytes, Bounded);
        return bytes.ToArray();
    }

    private static int SegmentFiles(SafekeeperCluster cluster, int i) =>
        Directory.EnumerateFiles(cluster.TimelineDir(i)).Count(p => G.TryParseSegmentFileName(Path.GetFileName(p), out _, out _));

    private static double MetricValue(string metrics, string name) =>
        Scrape.Value(metrics, name) ?? throw new InvalidOperationException($"no series {name} in the metrics");

    public void Dispose()
    {
        try { Directory.Delete(_remote, recursive: true); } catch (IOException) { }
    }

    /// <summary>Waits (bounded) until safekeeper <paramref name="i"/> has flushed WAL up to <paramref name="lsn"/>.</summary>
    private static Task FlushedAsync(SafekeeperCluster cluster, int i, Lsn lsn) =>
        SafekeeperClusterTests.WaitUntilAsync(async () => new Lsn((await cluster.StatusAsync(i)).FlushLsn) >= lsn, cluster, () => Task.FromResult(cluster.Logs()));
}
