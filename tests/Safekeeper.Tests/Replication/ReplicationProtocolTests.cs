using Storage.Core;
using Storage.Core.Auth;
using Storage.Core.Wal;
using Storage.Proposer;
using Storage.Testing;
using static Storage.Safekeeper.Tests.Replication.ReplicationClients;

namespace Storage.Safekeeper.Tests.Replication;

/// <summary>Safekeeper processes serving their WAL over PostgreSQL's replication protocol to PostgreSQL 15's own tools.</summary>
[Collection("processes")]
public class ReplicationProtocolTests
{
    /// <summary>A cluster with replication ports, an elected proposer and a writer of valid WAL.</summary>
    private sealed class Writer(WalProposer proposer, Lsn start)
    {
        private readonly SyntheticTransactions _source = new(new WalBuilder(start), new Random(11));
        public Lsn End { get; private set; } = start;

        public async Task<Lsn> WriteAsync(int bytes)
        {
            for (int written = 0; written < bytes; written += 32 * 1024) End = proposer.Append(_source.Next(32 * 1024));
            await proposer.WaitForCommitAsync(End).WaitAsync(Bounded);
            return End;
        }

        public static async Task<(Writer, WalProposer)> StartAsync(SafekeeperCluster cluster)
        {
            var proposer = cluster.NewProposer();
            proposer.Start();
            var start = await proposer.WaitElectedAsync(new CancellationTokenSource(Bounded).Token);
            return (new Writer(proposer, start), proposer);
        }
    }

    [Fact]
    public async Task Pg_receivewal_receives_the_committed_WAL_byte_for_byte_and_follows_the_commit_LSN()
    {
        await using var cluster = await SafekeeperCluster.StartAsync(replication: true);
        var (writer, proposer) = await Writer.StartAsync(cluster);
        await using var _ = proposer;
        await SafekeeperCommittedAsync(cluster, 0, await writer.WriteAsync(1024 * 1024));

        var dir = Path.Combine(cluster.Root, "received");
        await using var receiver = new PgReceiveWal(ConnInfo(cluster, 0, "pg_receivewal"), dir, cluster.ComputeToken());
        // Streaming first: an empty directory starts at the segment of the commit LSN it connects at,
        // which must still be the first one for the comparison below.
        var flushed = StandbySeries(cluster, "safekeeper_replication_standby_flush_lsn", "pg_receivewal");
        await Eventually.ReachAsync(() => MetricAsync(cluster, 0, flushed), v => v is not null, Bounded,
            () => $"pg_receivewal never reported a position\n{receiver.Output}\n{cluster.Logs()}");
        // More WAL while it streams, into the next segment: it follows the commit LSN.
        var end = await writer.WriteAsync(17 * 1024 * 1024);
        await SafekeeperCommittedAsync(cluster, 0, end);
        await Eventually.ReachAsync(() => MetricAsync(cluster, 0, flushed), v => v >= end.Value, Bounded,
            () => $"pg_receivewal did not report {end} flushed\n{receiver.Output}\n{cluster.Logs()}");
        Assert.Equal(0, await receiver.StopAsync());
        // The CopyDone path: pg_receivewal exits cleanly (the safekeeper's log is written on a background thread).
        await Eventually.ReachAsync(() => Task.FromResult(File.ReadAllText(cluster.LogFile(0))), log => log.Contains("stopped streaming"), Bounded, () => "no 'stopped streaming' logged");

        // Every byte up to the commit LSN is the safekeeper's; nothing past it was sent.
        var geometry = WalGeometry.Default;
        for (var segment = geometry.SegmentNumber(SafekeeperCluster.TimelineStart); segment <= geometry.SegmentNumber(end); segment++)
        {
            var name = geometry.SegmentFileName(1, segment);
            var held = await File.ReadAllBytesAsync(SegmentFile(cluster.TimelineDir(0), name));
            var received = await File.ReadAllBytesAsync(SegmentFile(dir, name));
            var upTo = (int)Math.Min(geometry.SegmentSize, end - geometry.SegmentStart(segment));
            Assert.True(held.AsSpan(0, upTo).SequenceEqual(received.AsSpan(0, upTo)), $"segment {name} differs from the safekeeper's");
            Assert.True(received.AsSpan(upTo).IndexOfAnyExcept((byte)0) < 0, $"segment {name} has bytes past the commit LSN {end}");
        }
    }

    private static string SegmentFile(string dir, string name) =>
        File.Exists(Path.Combine(dir, name)) ? Path.Combine(dir, name) : Path.Combine(dir, name + ".partial");

    [Fact]
    public async Task Connections_without_a_valid_token_of_the_tenant_are_refused_and_a_good_one_keeps_streaming()
    {
        await using var cluster = await SafekeeperCluster.StartAsync(replication: true);
        var (writer, proposer) = await Writer.StartAsync(cluster);
        await using var _ = proposer;
        await writer.WriteAsync(256 * 1024);
        await using var good = new PgReceiveWal(ConnInfo(cluster, 0, "good"), Path.Combine(cluster.Root, "good"), cluster.ComputeToken());
        var flushed = StandbySeries(cluster, "safekeeper_replication_standby_flush_lsn", "good");
        await Eventually.ReachAsync(() => MetricAsync(cluster, 0, flushed), v => v is not null, Bounded, () => good.Output + cluster.Logs());

        int port = cluster.PgPort(0);
        (string, string)[] parameters = [("user", "standby"), ("replication", "true"), ("options", cluster.ReplicationOptions)];
        async Task RefusedAsync(string password, string sqlState, string says, IReadOnlyList<(string, string)>? with = null)
        {
            var error = await LoginAsync(port, with ?? parameters, password);
            Assert.NotNull(error);
            Assert.Equal(("FATAL", sqlState), (error['S'], error['C']));
            Assert.Contains(says, error['M']);
        }
        var tokens = cluster.Tokens;
        await RefusedAsync("", "28P01", "no token");
        await RefusedAsync("garbage.not.a-token", "28P01", "malformed");
        await RefusedAsync(new TokenIssuer(SigningKey.Generate()).Issue(Scope.Compute, "x", TimeSpan.FromHours(1), cluster.TenantId), "28P01", "signature");
        await RefusedAsync(tokens.Issue(Scope.Compute, "x", TimeSpan.FromHours(1), TimelineIdsNew()), "28000", "may not act on tenant");
        await RefusedAsync(tokens.Issue(Scope.Controller, "x", TimeSpan.FromHours(1)), "28000", "may not stream WAL");
        // A valid token for a timeline this safekeeper does not have; a connection naming none.
        await RefusedAsync(tokens.Issue(Scope.Admin, "x", TimeSpan.FromHours(1)), "3D000", "is not known",
            [("user", "a"), ("replication", "true"), ("options", $"-c tenant_id={cluster.TenantId} -c timeline_id={TimelineIdsNew()}")]);
        await RefusedAsync(cluster.ComputeToken(), "3D000", "names no timeline", [("user", "a"), ("replication", "true")]);
        // Garbage instead of a startup packet; a message with a bad length word after logging in.
        var garbage = await SendRawAsync(port, [0, 0, 0, 3, 1, 2, 3, 4]);
        Assert.Equal("08P01", garbage!['C']);
        Assert.Null(await LoginAsync(port, parameters, cluster.ComputeToken()));

        // psql as a client: no password is refused (it is asked for one), a token is accepted.
        var noPassword = await PsqlAsync(ConnInfo(cluster, 0, "psql"), "IDENTIFY_SYSTEM", token: null);
        Assert.NotEqual(0, noPassword.ExitCode);
        Assert.Contains("password", noPassword.StandardError);
        var badToken = await PsqlAsync(ConnInfo(cluster, 0, "psql"), "IDENTIFY_SYSTEM", token: "not-a-token");
        Assert.Contains("token authentication failed", badToken.StandardError);
        var identify = await PsqlAsync(ConnInfo(cluster, 0, "psql"), "IDENTIFY_SYSTEM", cluster.ComputeToken());
        Assert.True(identify.Succeeded, identify.StandardError);
        var commit = new Lsn((await cluster.StatusAsync(0)).CommitLsn);
        Assert.Equal($"0|1|{commit}|", identify.StandardOutput.Trim()); // the cluster's timelines have system id 0
        var history = await PsqlAsync(ConnInfo(cluster, 0, "psql"), "TIMELINE_HISTORY 1", cluster.ComputeToken());
        Assert.Contains("has no history", history.StandardError);
        var below = await PsqlAsync(ConnInfo(cluster, 0, "psql"), "START_REPLICATION 0/10", cluster.ComputeToken());
        Assert.Contains("before the timeline's start", below.StandardError);

        // The good stream was never disturbed: it is still there and gets new WAL.
        var end = await writer.WriteAsync(256 * 1024);
        await SafekeeperCommittedAsync(cluster, 0, end);
        await Eventually.ReachAsync(() => MetricAsync(cluster, 0, flushed), v => v >= end.Value, Bounded, () => good.Output + cluster.Logs());
        Assert.False(good.HasExited, good.Output);
        Assert.True(await MetricAsync(cluster, 0, "safekeeper_replication_refused_total{reason=\"bad_token\"}") >= 3);
    }

    private static string TimelineIdsNew() => Core.Api.TimelineIds.New();
}
