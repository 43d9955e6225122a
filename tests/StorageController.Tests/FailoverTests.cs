using Storage.Core;
using Storage.Core.Api;
using Grpc.Core;
using Storage.Proto.Pageserver;
using Storage.Testing;

namespace Storage.StorageController.Tests;

/// <summary>
/// The storage controller with two real pageservers (ps1 attached, ps2 secondary), three real
/// safekeepers and real compute agents with PostgreSQL 15, over a local-folder object store.
/// </summary>
public sealed class FailoverTests
{
    private static readonly TimeSpan Slow = TimeSpan.FromSeconds(120);

    private static Task<T> EventuallyAsync<T>(Func<Task<T>> probe, Func<T, bool> done, TimeSpan timeout, Func<string> describe) =>
        Eventually.ReachAsync(probe, done, timeout, describe);

    private static async Task<TimelineInfo?> ReportedAsync(PageserverNode node, ComputeCluster cluster) =>
        (await PageserverClient.ListTimelinesAsync(node.Uri)).Timelines.FirstOrDefault(i => i.Timeline.TimelineId == cluster.TimelineId);

    [Fact]
    public async Task Attached_pageserver_killed_under_writes_the_secondary_takes_over_and_no_acknowledged_commit_is_lost()
    {
        await using var cluster = await ComputeCluster.StartAsync(vms: 2, withController: true);
        var controller = cluster.Controller!;
        var (ps1, ps2) = (cluster.Pageservers[0], cluster.Pageservers[1]);
        await controller.WaitForPlacementAsync(cluster.TenantId, cluster.TimelineId, p => p.SecondaryNode == "ps2", Slow);
        await EventuallyAsync(() => ReportedAsync(ps2, cluster), i => i?.Mode == LocationMode.Secondary, Slow, cluster.Logs);

        await cluster.AttachOrThrowAsync(cluster.Vms[0]);
        var cs = Sql.ConnectionString(cluster, cluster.Vms[0]);
        var writer = await AckedBatchWriter.StartAsync(cs, batchSize: 1000);
        // Some WAL in object storage first, so the secondary has layers to keep downloaded.
        await EventuallyAsync(() => ps1.TimelineAsync(cluster.TenantId, cluster.TimelineId),
            i => i.RemoteConsistentLsn > cluster.Timeline.StartLsn + (ulong)WalGeometry.DefaultSegmentSize, Slow, cluster.Logs);

        await ps1.KillAsync();
        var promoted = await controller.WaitForPlacementAsync(cluster.TenantId, cluster.TimelineId, p => p.AttachedNode == "ps2", Slow);
        Assert.Equal(2UL, promoted.Generation);
        Assert.Equal("ps1", promoted.SecondaryNode);
        var onPs2 = await EventuallyAsync(() => ReportedAsync(ps2, cluster), i => i?.Mode == LocationMode.Attached, Slow, cluster.Logs);
        Assert.Equal(2UL, onPs2!.Generation);

        // The running compute never noticed: commits go on through the safekeepers.
        var before = writer.Acked;
        await EventuallyAsync(() => Task.FromResult(writer.Acked), n => n > before + 2000, Slow, cluster.Logs);
        var acked = await writer.StopAsync();

        // A new compute starts from ps2 (ps1 is down and is skipped) with every acknowledged row.
        await cluster.Vms[0].DetachAsync();
        await cluster.AttachOrThrowAsync(cluster.Vms[1]);
        Assert.Equal(acked, await Sql.ScalarAsync(Sql.ConnectionString(cluster, cluster.Vms[1]), "select count(*) from acked"));
        await EventuallyAsync(() => Task.FromResult(File.ReadAllText(ps2.LogFile)), log => log.Contains("basebackup of", StringComparison.Ordinal), Slow, cluster.Logs);

        // ps1 comes back as the secondary; its old generation may no longer delete anything.
        await ps1.StartAsync();
        await EventuallyAsync(() => ReportedAsync(ps1, cluster), i => i?.Mode == LocationMode.Secondary, Slow, cluster.Logs);
        Assert.False(await ControllerClient.ValidateGenerationAsync(controller.Uri, "ps1", cluster.TenantId, cluster.TimelineId, 1));
        Assert.True(await ControllerClient.ValidateGenerationAsync(controller.Uri, "ps2", cluster.TenantId, cluster.TimelineId, 2));
        // The restarted ps1 is online again once the controller's heartbeats reach it.
        var status = await EventuallyAsync(() => controller.StatusAsync(), s => s.Nodes.All(n => n.Online), Slow, cluster.Logs);
        Assert.Equal(1UL, status.Failovers);
        using var http = new HttpClient();
        Assert.Contains("controller_failovers_total", await http.GetStringAsync(new Uri(controller.HttpUri, "/metrics")));
    }

    [Fact]
    public async Task A_pageserver_that_hangs_is_failed_away_from_and_demoted_when_it_wakes_and_its_deletions_are_refused()
    {
        await using var cluster = await ComputeCluster.StartAsync(vms: 1, withController: true);
        var controller = cluster.Controller!;
        var (ps1, ps2) = (cluster.Pageservers[0], cluster.Pageservers[1]);
        await cluster.AttachOrThrowAsync(cluster.Vms[0]);
        var cs = Sql.ConnectionString(cluster, cluster.Vms[0]);
        await Sql.ExecAsync(cs, "create table t (id int primary key)");
        await Sql.ExecAsync(cs, "insert into t select generate_series(1, 100)");
        await EventuallyAsync(() => ReportedAsync(ps2, cluster), i => i?.Mode == LocationMode.Secondary, Slow, cluster.Logs);

        // Refusals: a secondary serves no basebackup, placement goes through the controller, and an
        // attach needs a generation the controller issued.
        var commit = new Lsn((await cluster.Safekeepers.StatusAsync(0)).CommitLsn);
        var onSecondary = await Assert.ThrowsAsync<RpcException>(() =>
            PageserverClient.BasebackupAsync(ps2.Uri, cluster.TenantId, cluster.TimelineId, commit, Stream.Null, TimeSpan.FromSeconds(5)));
        Assert.Equal(StatusCode.FailedPrecondition, onSecondary.StatusCode);
        Assert.Contains("secondary", onSecondary.Status.Detail);
        var direct = await Assert.ThrowsAsync<RpcException>(() => ps1.CreateTimelineAsync(cluster.TenantId, TimelineIds.New()));
        Assert.Equal(StatusCode.FailedPrecondition, direct.StatusCode);
        Assert.Contains("storage controller", direct.Status.Detail);
        var noGeneration = await Assert.ThrowsAsync<RpcException>(() =>
            PageserverClient.SetLocationAsync(ps2.Uri, cluster.TenantId, cluster.TimelineId, LocationMode.Attached, 0, TimeSpan.FromSeconds(10)));
        Assert.Equal(StatusCode.InvalidArgument, noGeneration.StatusCode);

        ps1.Freeze(); // it still believes it is attached, with generation 1
        try
        {
            await controller.WaitForPlacementAsync(cluster.TenantId, cluster.TimelineId, p => p.AttachedNode == "ps2" && p.Generation == 2, Slow);
            await Sql.ExecAsync(cs, "insert into t select generate_series(101, 200)");
        }
        finally { ps1.Thaw(); }

        // Awake again, ps1 hears from the reconciler that it is only the secondary now.
        await EventuallyAsync(() => ReportedAsync(ps1, cluster), i => i?.Mode == LocationMode.Secondary, Slow, cluster.Logs);
        var onPs2 = await EventuallyAsync(() => ReportedAsync(ps2, cluster), i => i?.Mode == LocationMode.Attached, Slow, cluster.Logs);
        Assert.Equal(2UL, onPs2!.Generation);
        var committed = (await cluster.Safekeepers.StatusAsync(0)).CommitLsn;
        await EventuallyAsync(() => ReportedAsync(ps2, cluster), i => i?.IngestedLsn >= committed, Slow, cluster.Logs);
        // What a generation-1 writer may do is checked with the controller, and refused.
        Assert.False(await ControllerClient.ValidateGenerationAsync(controller.Uri, "ps1", cluster.TenantId, cluster.TimelineId, 1));
        Assert.Equal(200, await Sql.ScalarAsync(cs, "select count(*) from t"));
    }
}
