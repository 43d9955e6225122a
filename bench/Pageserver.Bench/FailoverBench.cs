using System.Diagnostics;
using Storage.Core;
using Storage.Core.Api;
using Grpc.Core;
using Storage.Testing;

namespace Storage.Pageserver.Bench;

/// <summary>How long basebackups were unavailable after the attached pageserver died, both ways, per run.</summary>
public sealed record FailoverResults(IReadOnlyList<double> PromotedSeconds, IReadOnlyList<double> SecondarySeconds, IReadOnlyList<double> RestartSeconds);

/// <summary>
/// The attached pageserver is SIGKILLed under a compute's writes; measured until a basebackup at the
/// safekeepers' commit LSN succeeds again. With the storage controller: its secondary is promoted
/// (ps2). Baseline, in the same run: one pageserver and no controller, restarted at once on its own
/// disk (what an operator's supervisor would do).
/// </summary>
public static class FailoverBench
{
    private static readonly TimeSpan Limit = TimeSpan.FromMinutes(3);

    public static async Task<FailoverResults> RunAsync(int repeats)
    {
        var promoted = new List<double>();
        var secondary = new List<double>();
        var restart = new List<double>();
        for (int run = 1; run <= repeats; run++)
        {
            Log($"pageserver failover run {run}/{repeats}: with a controller and a secondary ...");
            await using (var cluster = await PrepareAsync(withController: true))
            {
                var killed = Stopwatch.StartNew();
                await cluster.Pageservers[0].KillAsync();
                await cluster.Controller!.WaitForPlacementAsync(cluster.TenantId, cluster.TimelineId, p => p.AttachedNode == "ps2", Limit);
                promoted.Add(killed.Elapsed.TotalSeconds);
                await UntilBasebackupAsync(cluster, cluster.Pageservers[1]);
                secondary.Add(killed.Elapsed.TotalSeconds);
            }
            Log($"pageserver failover run {run}/{repeats}: baseline, one pageserver restarted at once ...");
            await using (var cluster = await PrepareAsync(withController: false))
            {
                var killed = Stopwatch.StartNew();
                await cluster.Pageserver.KillAsync();
                await cluster.Pageserver.StartAsync();
                await UntilBasebackupAsync(cluster, cluster.Pageserver);
                restart.Add(killed.Elapsed.TotalSeconds);
            }
            Log($"  promoted {promoted[^1]:F2} s, serving from the secondary {secondary[^1]:F2} s; restart baseline {restart[^1]:F2} s");
        }
        return new FailoverResults(promoted, secondary, restart);
    }

    /// <summary>A cluster whose compute wrote a few MB of WAL that is in object storage (and, with a controller, on the secondary).</summary>
    private static async Task<ComputeCluster> PrepareAsync(bool withController)
    {
        var cluster = await ComputeCluster.StartAsync(vms: 1, withController: withController);
        try
        {
            var vm = cluster.Vms[0];
            var status = await vm.AttachAsync(cluster.NewAttachRequest());
            if (status.State != Proto.Compute.ComputeState.Running) throw new InvalidOperationException($"attach: {status.State} {status.Reason}");
            var cs = $"Host=127.0.0.1;Port={vm.PostgresPort};Username={ComputeCluster.Role};Password={cluster.Password};Database=postgres;Pooling=false";
            await Sql.ExecAsync(cs, "create table t as select g as id, repeat('x', 500) as pad from generate_series(1, 60000) g");
            var uploaded = cluster.Timeline.StartLsn + (ulong)WalGeometry.DefaultSegmentSize;
            await Eventually.ReachAsync(() => cluster.Pageserver.TimelineAsync(cluster.TenantId, cluster.TimelineId),
                info => info.RemoteConsistentLsn >= uploaded, Limit, () => "the pageserver did not upload a segment");
            if (withController) await Task.Delay(TimeSpan.FromSeconds(2)); // one secondary refresh (500 ms in tests) and then some
            return cluster;
        }
        catch
        {
            Console.Error.WriteLine(cluster.Logs());
            await cluster.DisposeAsync();
            throw;
        }
    }

    /// <summary>Retries a basebackup at the safekeepers' commit LSN until <paramref name="pageserver"/> serves it.</summary>
    private static async Task UntilBasebackupAsync(ComputeCluster cluster, PageserverNode pageserver)
    {
        var commit = new Lsn((await cluster.Safekeepers.StatusAsync(0)).CommitLsn);
        for (var clock = Stopwatch.StartNew(); ; await Task.Delay(50))
        {
            try
            {
                await PageserverClient.BasebackupAsync(pageserver.Uri, cluster.TenantId, cluster.TimelineId, commit, Stream.Null, TimeSpan.FromSeconds(10));
                return;
            }
            catch (Exception e) when (e is RpcException or HttpRequestException or IOException or InvalidOperationException)
            {
                if (clock.Elapsed > Limit) throw new TimeoutException($"no basebackup from {pageserver.Name}: {e.Message}\n{cluster.Logs()}");
            }
        }
    }

    private static void Log(string message) => Console.WriteLine($"{DateTime.Now:HH:mm:ss} {message}");
}
