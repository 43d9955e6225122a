using Npgsql;
using Storage.ComputeProxy.ControlPlane;
using Storage.Core.Postgres;
using Storage.Core.Processes;
using Storage.Testing;

namespace Storage.ControlPlane.Tests;

/// <summary>
/// A pool of external VMs (as VM containers are): compute agents the control plane did not start and
/// cannot kill, given by their addresses. A dead one loses its endpoint to the other; started again
/// on the same address it rejoins the pool as an idle VM; a restarted control plane adopts them.
/// </summary>
public sealed class ExternalVmTests(ClusterFixture fixture, ITestOutputHelper output) : IClassFixture<ClusterFixture>
{
    [Fact]
    public async Task Killed_external_vm_loses_its_endpoint_to_the_other_and_rejoins_idle_once_it_answers_again()
    {
        var cluster = fixture.Cluster;
        var agents = new[] { await cluster.StartVmAsync(), await cluster.StartVmAsync() };
        await using var h = await Harness.StartAsync(cluster, output, externalVms: agents.Select(a => a.Uri).ToList());
        // A probe that missed its deadline on a loaded machine is retried on a later heartbeat round.
        await Harness.WaitUntilAsync(() => h.ControlPlane.Pool.Snapshot().Count == 2, TimeSpan.FromSeconds(60), "both VMs in the pool");
        Assert.Equal(["vm1", "vm2"], h.ControlPlane.Pool.Snapshot().Select(v => v.Id).Order());

        h.CreateEndpoint("ext");
        await h.ExecAsync("ext", "create table acked (id int primary key)");
        var first = await h.Locator.LocateAsync("ext", CancellationToken.None);
        var dead = agents.Single(a => a.Name == first.VmId);
        Assert.Equal(dead.PostgresPort, first.Port);
        var acknowledged = new List<int>();
        await using (var connection = await h.ConnectAsync("ext", CancellationToken.None))
            for (int id = 1; id <= 20; id++)
            {
                await using var insert = new NpgsqlCommand($"insert into acked values ({id})", connection);
                await insert.ExecuteNonQueryAsync();
                acknowledged.Add(id);
            }

        // The whole VM dies, as a killed container does: its agent and its PostgreSQL.
        var postmaster = dead.Postmaster;
        Assert.True(OsUser.Signal(dead.Process.Pid, OsUser.SigKill));
        await postmaster.KillAllAsync();

        await Harness.WaitUntilAsync(() => h.ControlPlane.Attacher.CurrentAddress("ext") is { } a && a.VmId != dead.Name,
            TimeSpan.FromSeconds(60), "endpoint reattached to the other VM");
        Assert.Equal(1, h.ControlPlane.Metrics.Reattaches.Value);
        Assert.Equal(acknowledged.Count, await h.ScalarAsync("ext", $"select count(*) from acked where id in ({string.Join(',', acknowledged)})"));
        Assert.DoesNotContain(h.ControlPlane.Pool.Snapshot(), v => v.Id == dead.Name); // not started anew by the pool: nothing answers there

        // Its restart policy brings it back on the same address: it answers as idle and rejoins.
        await using var restarted = await ServiceProcess.StartAsync(ComputeCommand.Assembly,
            ComputeCommand.Arguments(dead.Name, dead.Uri.Port, dead.HttpUri.Port, dead.WorkDirectory, dead.PostgresPort, extra: TestAuth.VerifierArguments),
            Path.Combine(cluster.Root, dead.Name + "-restarted.log"), readyTimeout: TimeSpan.FromSeconds(60));
        try
        {
            await Harness.WaitUntilAsync(() => h.ControlPlane.Pool.Find(dead.Name) is { State: VmState.Idle }, TimeSpan.FromSeconds(30), "the restarted VM idle in the pool");
            Assert.Equal(2, h.ControlPlane.Pool.Snapshot().Count);

            // A restarted control plane adopts both: the endpoint stays where it is, without a new attach.
            var serving = h.ControlPlane.Attacher.CurrentAddress("ext")!;
            await h.RestartAsync();
            Assert.Equal(serving, h.ControlPlane.Attacher.CurrentAddress("ext"));
            Assert.Equal(VmState.Idle, h.ControlPlane.Pool.Find(dead.Name)?.State);
            Assert.Equal(20, await h.ScalarAsync("ext", "select count(*) from acked"));
            Assert.Equal(0, h.ControlPlane.Metrics.Wakes.Value); // served by the adopted VM
        }
        finally
        {
            await ServiceProcess.StopPidAsync(restarted.Pid, TimeSpan.FromSeconds(20));
        }
    }
}
