using System.Diagnostics;
using System.Net.Http.Json;
using Npgsql;
using Xunit.Abstractions;
using Storage.ComputeProxy.ControlPlane;
using Storage.Core.Api;
using Storage.Core.Postgres;
using Storage.Core.Processes;
using Storage.Testing;

namespace Storage.ComputeProxy.Tests;

/// <summary>
/// The whole path as users have it: the proxy process (with its control plane and a pool of two
/// compute VMs) in front of three safekeepers and a pageserver, all real processes. Clients keep one
/// connection string while VMs, PostgreSQL and the proxy itself are SIGKILLed.
/// </summary>
public sealed class ProxyProcessTests(ITestOutputHelper output)
{
    private static async Task<AdminApi.StatusView> StatusAsync(ProxyProcess proxy)
    {
        using var http = proxy.AdminHttp();
        return (await http.GetFromJsonAsync<AdminApi.StatusView>(new Uri(proxy.Admin, "/status")))!;
    }

    [Fact]
    public async Task Clients_keep_one_connection_string_while_the_vm_postgres_and_proxy_are_killed()
    {
        await using var cluster = await ComputeCluster.StartAsync(vms: 0);
        var root = Directory.CreateTempSubdirectory("proxy-process-").FullName;
        await using var proxy = new ProxyProcess(Path.Combine(root, "controlplane"), cluster);
        try
        {
            await proxy.StartAsync();
            using (var http = proxy.AdminHttp())
            {
                var created = await http.PostAsJsonAsync(new Uri(proxy.Admin, "/endpoints"), new AdminApi.CreateEndpointBody("main", cluster.TenantId, cluster.TimelineId,
                    ComputeCluster.Role, cluster.Password, new Dictionary<string, string> { ["shared_buffers"] = "32MB" }, null));
                Assert.True(created.IsSuccessStatusCode, await created.Content.ReadAsStringAsync());
            }
            // One string for the whole test: the default endpoint is main.
            var cs = proxy.ConnectionString();
            await Sql.ExecAsync(cs, "create table acked (id int primary key)"); // wakes main on a pooled VM

            long acked = 0;
            async Task WriteAsync(int from, int count)
            {
                for (int i = from; i < from + count; i++)
                {
                    await Sql.RunWithRetryAsync(cs, $"insert into acked values ({i}) on conflict do nothing", TimeSpan.FromSeconds(60));
                    acked = i;
                }
            }
            await WriteAsync(1, 20);

            // The idle VM gets prepared for main's timeline (its newest image unpacked ahead of time).
            await Eventually.ReachAsync(() => StatusAsync(proxy),
                s => s.Vms.Any(v => v.State == "idle" && v.PreparedTimelineId == cluster.TimelineId && v.PreparedImageLsn > 0),
                TimeSpan.FromSeconds(60), () => proxy.LogTail());

            // The VM dies with its PostgreSQL: the control plane reattaches main to the other VM.
            var before = (await StatusAsync(proxy)).Endpoints.Single(e => e.Id == "main");
            var vm = (await StatusAsync(proxy)).Vms.Single(v => v.Id == before.VmId);
            var postmaster = proxy.PostmasterPid(vm.Id);
            OsUser.Signal(vm.Pid, OsUser.SigKill);
            OsUser.Signal(postmaster, OsUser.SigKill);
            var clock = Stopwatch.StartNew();
            await WriteAsync(21, 20);
            var failover = clock.Elapsed;
            var after = (await StatusAsync(proxy)).Endpoints.Single(e => e.Id == "main");
            Assert.NotEqual(before.VmId, after.VmId);
            var reattached = (await StatusAsync(proxy)).Vms.Single(v => v.Id == after.VmId);
            var agent = await ComputeClient.StatusAsync(new Uri($"http://127.0.0.1:{reattached.GrpcPort}"));
            Assert.True(agent.BuiltOnPreparedImage, $"main was reattached from a whole basebackup: {agent}");

            // PostgreSQL alone dies: its agent restarts it on the same VM.
            var status = await StatusAsync(proxy);
            var current = status.Vms.Single(v => v.Id == after.VmId);
            var pg = proxy.PostmasterPid(current.Id);
            OsUser.Signal(pg, OsUser.SigKill);
            await WriteAsync(41, 20);

            // The proxy itself dies and comes back: its VMs kept running, the same string works.
            await proxy.KillAsync();
            await proxy.StartAsync();
            await WriteAsync(61, 20);

            Assert.Equal(acked, await Sql.ScalarAsync(cs, "select count(*) from acked"));
            output.WriteLine($"20 inserts through the proxy took {failover.TotalSeconds:0.00} s after the VM was killed (reattach included)");
        }
        catch (Exception e) when (e is not Xunit.Sdk.XunitException)
        {
            throw new Xunit.Sdk.XunitException($"{e}\n--- proxy\n{proxy.LogTail()}\n{cluster.Logs()}");
        }
        finally
        {
            await proxy.DisposeAsync();
            try { Directory.Delete(root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    [Fact]
    public async Task A_frozen_vm_is_replaced_and_the_sessions_relayed_to_it_are_ended()
    {
        await using var cluster = await ComputeCluster.StartAsync(vms: 0);
        var root = Directory.CreateTempSubdirectory("proxy-process-").FullName;
        await using var proxy = new ProxyProcess(Path.Combine(root, "controlplane"), cluster);
        var frozen = new List<int>();
        try
        {
            await proxy.StartAsync();
            using (var http = proxy.AdminHttp())
            {
                var created = await http.PostAsJsonAsync(new Uri(proxy.Admin, "/endpoints"), new AdminApi.CreateEndpointBody("main", cluster.TenantId, cluster.TimelineId,
                    ComputeCluster.Role, cluster.Password, new Dictionary<string, string> { ["shared_buffers"] = "32MB" }, null));
                Assert.True(created.IsSuccessStatusCode, await created.Content.ReadAsStringAsync());
            }
            var cs = proxy.ConnectionString(timeoutSeconds: 120);
            await Sql.ExecAsync(cs, "create table acked (id int primary key)");
            await using var old = new NpgsqlConnection(cs);
            await old.OpenAsync();

            // The VM freezes whole (agent and every PostgreSQL process): a partitioned VM.
            var vmId = (await StatusAsync(proxy)).Endpoints.Single(e => e.Id == "main").VmId!;
            var vm = (await StatusAsync(proxy)).Vms.Single(v => v.Id == vmId);
            var postmaster = PostmasterRecord.ReadFrom(Path.Combine(proxy.DataDirectory, "vms", vmId))!;
            frozen.AddRange([vm.Pid, .. PostgresProcesses.Find(postmaster.DataDirectory)]);
            foreach (var pid in frozen) OsUser.Signal(pid, OsUser.SigStop);

            // Writes go on once the control plane has declared it dead and attached main elsewhere...
            await Sql.RunWithRetryAsync(cs, "insert into acked values (1)", TimeSpan.FromSeconds(120));
            Assert.NotEqual(vmId, (await StatusAsync(proxy)).Endpoints.Single(e => e.Id == "main").VmId);

            // ...and the session relayed to the frozen VM is over: it fails at once instead of hanging forever.
            await using var query = new NpgsqlCommand("select 1", old) { CommandTimeout = 60 };
            var clock = Stopwatch.StartNew();
            await Assert.ThrowsAnyAsync<Exception>(() => query.ExecuteScalarAsync());
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"the old session hung for {clock.Elapsed}");
        }
        catch (Exception e) when (e is not Xunit.Sdk.XunitException)
        {
            throw new Xunit.Sdk.XunitException($"{e}\n--- proxy\n{proxy.LogTail()}\n{cluster.Logs()}");
        }
        finally
        {
            foreach (var pid in frozen) OsUser.Signal(pid, OsUser.SigCont); // fenced by now; never leave a stopped process behind
            await proxy.DisposeAsync();
            try { Directory.Delete(root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }
}
