using System.Diagnostics;
using System.Text.Json;
using Npgsql;
using Storage.Core.Postgres;
using Storage.Testing;
using Xunit.Abstractions;

namespace Storage.Cli.Tests;

/// <summary>
/// docker-compose.yml for real, on the Docker Engine (scripts/test.sh starts dockerd and builds the
/// images with scripts/docker-images.sh): up, the URI from the bootstrap logs, psql and Npgsql
/// through the proxy; under a write load, the death of each VM container by `docker kill` (the VM
/// keeper starts it again) and of one by a crash (its restart policy does), of sk1 and of ps1, a partition of one safekeeper
/// (commits go on) and of two (commits wait, unacknowledged, and resume on reconnect); then down
/// and up, and every acknowledged row is there. Prometheus scrapes everything and has its rules.
/// </summary>
public sealed class DockerClusterTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Step = TimeSpan.FromSeconds(90);
    private int _nextProbeId = 1_000_000;

    [Fact]
    public async Task Compose_cluster_serves_through_the_proxy_survives_container_deaths_and_partitions_and_keeps_its_rows()
    {
        foreach (var image in new[] { "storage-engine:local", "storage-s3rver:local", "storage-prometheus:local" })
            await RequireImageAsync(image);
        await using var project = await ComposeProject.CreateAsync();
        try { await RunAsync(project); }
        catch
        {
            output.WriteLine(await project.LogsAsync());
            throw;
        }
    }

    private async Task RunAsync(ComposeProject project)
    {
        var clock = Stopwatch.StartNew();
        await project.ComposeAsync("up", "-d");
        var uri = await BootstrapUriAsync(project);
        Assert.Contains($"@localhost:{project.PostgresPort}/", uri);
        // As a user would, with the printed string (the first connection wakes endpoint main).
        Assert.Contains("psql-ok", await Psql(uri, "create table acked (id int primary key); select 'psql-ok'"));
        void Phase(string what) => output.WriteLine($"{clock.Elapsed.TotalSeconds,6:0.0} s  {what}");
        Phase("up, first query through the proxy (psql)");
        using (var anonymous = new HttpClient { Timeout = TimeSpan.FromSeconds(5) })
        {
            // The published admin port lets no one in without the cluster's admin token.
            var refused = await anonymous.GetAsync($"http://127.0.0.1:{project.AdminPort}/status");
            Assert.Equal(System.Net.HttpStatusCode.Unauthorized, refused.StatusCode);
        }

        var npgsql = NpgsqlConnectionString(uri);
        var writes = WriteLoop.Start(npgsql, "acked", 1);
        var probed = new List<int>();
        await writes.WaitForMoreAsync(20, Step);

        // VM containers: the endpoint moves to the other VM. `docker kill` is an operator's stop for
        // Docker (restart policies leave it down): the VM keeper starts each killed one again. A VM
        // that dies by itself (its processes SIGKILLed from the host, as a crash or the OOM killer
        // does) is brought back by its restart policy. Either way it rejoins the pool as an idle VM.
        VmContainer? previous = null;
        for (int kill = 1; kill <= 2; kill++)
        {
            var killed = await AttachedVmAsync(project);
            if (previous is not null) Assert.NotEqual(previous.Name, killed.Name);
            var failover = await FailoverAsync(project, npgsql, probed, () => project.DockerAsync("kill", killed.Container));
            Phase($"docker kill {killed.Name}: next commit through the proxy {failover.TotalMilliseconds:0} ms later");
            await WaitForIdleVmAsync(project, killed.Name);
            await writes.WaitForMoreAsync(20, Step);
            Phase($"{killed.Name} started again by the VM keeper, idle in the pool");
            previous = killed;
        }

        var crashed = await AttachedVmAsync(project);
        int restartsBefore = int.Parse(await project.InspectAsync(crashed.Name, "{{.RestartCount}}"));
        int init = int.Parse(await project.InspectAsync(crashed.Name, "{{.State.Pid}}"));
        var crash = await FailoverAsync(project, npgsql, probed, () =>
        {
            Assert.True(OsUser.Signal(init, OsUser.SigKill));
            return Task.CompletedTask;
        });
        Phase($"crash of {crashed.Name}: next commit through the proxy {crash.TotalMilliseconds:0} ms later");
        await WaitForIdleVmAsync(project, crashed.Name);
        Assert.True(int.Parse(await project.InspectAsync(crashed.Name, "{{.RestartCount}}")) > restartsBefore, "restarted by its restart policy");
        await writes.WaitForMoreAsync(20, Step);
        Phase($"{crashed.Name} restarted by its restart policy, idle in the pool");

        // A safekeeper and a pageserver die like their processes: commits go on (2 of 3 safekeepers;
        // a running compute needs no pageserver, and the controller fails a timeline over).
        foreach (var service in new[] { "sk1", "ps1" })
        {
            var container = await project.ContainerAsync(service);
            await project.DockerAsync("kill", container);
            await writes.WaitForMoreAsync(20, Step);
            await project.DockerAsync("start", container);
            Phase($"{service} killed: commits went on; started again");
        }

        // Partitions: one safekeeper cut off, commits go on; two, a commit waits and is not
        // acknowledged while they are; reconnected, it is, and the writes resume.
        var network = await project.NetworkAsync();
        await project.DockerAsync("network", "disconnect", network, await project.ContainerAsync("sk2"));
        await writes.WaitForMoreAsync(20, Step);
        await project.DockerAsync("network", "disconnect", network, await project.ContainerAsync("sk3"));
        int pendingId = _nextProbeId++;
        var pending = CommitAsync(npgsql, pendingId);
        int ackedAtPartition = writes.AckedCount;
        var first = await Task.WhenAny(pending, Task.Delay(TimeSpan.FromSeconds(5))); // the window in which nothing may be acknowledged
        Assert.NotSame(pending, first);
        Assert.True(writes.AckedCount <= ackedAtPartition + 1, $"{writes.AckedCount - ackedAtPartition} commits acknowledged with 2 of 3 safekeepers cut off");
        foreach (var service in new[] { "sk2", "sk3" })
            await project.DockerAsync("network", "connect", "--alias", service, network, await project.ContainerAsync(service));
        await pending.WaitAsync(Step);
        probed.Add(pendingId);
        await writes.WaitForMoreAsync(20, Step);
        Phase("partitions: 1 safekeeper cut off, commits went on; 2, a commit waited; reconnected, acknowledged");

        await WaitForPrometheusAsync(project);
        Phase("Prometheus: every target up, the p99 recorded, the rules healthy");

        // Down without -v, up: the volumes keep everything.
        var acked = (await writes.StopAsync()).Concat(probed).ToList();
        await project.ComposeAsync("down", "--timeout", "20");
        await project.ComposeAsync("up", "-d");
        Assert.Equal(uri, await BootstrapUriAsync(project));
        var present = await RetryAsync(() => Sql.ScalarAsync(npgsql, $"select count(*) from acked where id = any(array[{string.Join(',', acked)}])"));
        Assert.Equal(acked.Count, present);
        Phase($"down and up: all {acked.Count} acknowledged rows there");
    }

    /// <summary>The connection string the one-shot bootstrap service printed (it may take the services a while to come up).</summary>
    private static Task<string> BootstrapUriAsync(ComposeProject project) => Eventually.ReachAsync(
        async () => (await project.ComposeAsync("logs", "--no-color", "bootstrap")).Split('\n')
            .Select(line => line[(line.IndexOf('|') + 1)..].Trim()).LastOrDefault(line => line.StartsWith("postgresql://")) ?? "",
        uri => uri.Length > 0, TimeSpan.FromMinutes(4), () => "bootstrap printed no postgresql:// URI");

    private static string NpgsqlConnectionString(string uri)
    {
        var u = new Uri(uri);
        var user = u.UserInfo.Split(':', 2);
        var options = u.Query.TrimStart('?').Split('&').Where(p => p.StartsWith("options=")).Select(p => Uri.UnescapeDataString(p["options=".Length..]));
        // No cancel after a timeout: PostgreSQL would answer a cancelled synchronous commit "committed locally".
        return new NpgsqlConnectionStringBuilder
        {
            Host = u.Host, Port = u.Port, Username = Uri.UnescapeDataString(user[0]), Password = Uri.UnescapeDataString(user[1]),
            Database = u.AbsolutePath.Trim('/'), Options = options.SingleOrDefault(), Pooling = false, Timeout = 15, CommandTimeout = 60, CancellationTimeout = -1,
        }.ConnectionString;
    }

    /// <summary>Retries a query while the cluster comes up (connections refused or broken), for <see cref="Step"/> at most.</summary>
    private static async Task<T> RetryAsync<T>(Func<Task<T>> query)
    {
        for (var clock = Stopwatch.StartNew(); ; await Task.Delay(500))
        {
            try { return await query(); }
            catch (Exception e) when (e is NpgsqlException or IOException or TimeoutException && clock.Elapsed < Step) { }
        }
    }

    private static async Task CommitAsync(string connectionString, int id) =>
        await Sql.ExecAsync(connectionString, $"insert into acked values ({id})");

    /// <summary>
    /// Runs <paramref name="kill"/> on the endpoint's VM, then commits through the proxy on new
    /// connections until one is acknowledged; returns the time from the kill to that commit.
    /// </summary>
    private async Task<TimeSpan> FailoverAsync(ComposeProject project, string connectionString, List<int> probed, Func<Task> kill)
    {
        var before = await AttachedVmAsync(project);
        await kill();
        var clock = Stopwatch.StartNew();
        while (true)
        {
            int id = _nextProbeId++;
            try
            {
                await CommitAsync(connectionString, id);
                probed.Add(id);
                break;
            }
            catch (Exception e) when (e is NpgsqlException or IOException or TimeoutException && clock.Elapsed < Step) { } // the next try is a new connection
        }
        var took = clock.Elapsed;
        Assert.NotEqual(before.Name, (await AttachedVmAsync(project)).Name);
        return took;
    }

    private sealed record VmContainer(string Name, string Container);

    /// <summary>The VM serving endpoint main, as the control plane says.</summary>
    private static async Task<VmContainer> AttachedVmAsync(ComposeProject project)
    {
        var name = await Eventually.ReachAsync(async () =>
        {
            var status = await project.ControlPlaneStatusAsync();
            var main = status.GetProperty("endpoints").EnumerateArray().Single(e => e.GetProperty("id").GetString() == "main");
            return main.GetProperty("state").GetString() == "attached" ? main.GetProperty("vmId").GetString() ?? "" : "";
        }, vm => vm.Length > 0, Step, () => "endpoint main is attached to no VM");
        return new VmContainer(name, await project.ContainerAsync(name));
    }

    private static Task WaitForIdleVmAsync(ComposeProject project, string vm) => Eventually.ReachAsync(async () =>
        {
            var status = await project.ControlPlaneStatusAsync();
            return status.GetProperty("vms").EnumerateArray().Any(v => v.GetProperty("id").GetString() == vm && v.GetProperty("state").GetString() == "idle");
        }, idle => idle, Step, () => $"{vm} is no idle VM of the pool");

    /// <summary>Every target scraped, the p99 recording rule has a value, the rules loaded.</summary>
    private static async Task WaitForPrometheusAsync(ComposeProject project)
    {
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{project.PrometheusPort}/"), Timeout = TimeSpan.FromSeconds(5) };
        async Task<JsonElement> Query(string query) =>
            JsonDocument.Parse(await http.GetStringAsync("api/v1/query?query=" + Uri.EscapeDataString(query))).RootElement.GetProperty("data").GetProperty("result").Clone();
        // The value of a query whose answer is one number (a sum), or null while there is none.
        async Task<string?> Number(string query) => (await Query(query)).EnumerateArray().Select(r => r.GetProperty("value")[1].GetString()).SingleOrDefault();
        await Eventually.ReachAsync(() => Number("sum(up)"),
            up => up == "10", Step, () => "not all 10 targets (3 safekeepers, 2 pageservers, controller, proxy, 2 VMs, VM keeper) are up in Prometheus");
        await Eventually.ReachAsync(async () => (await Query("storage:quorum_commit_latency_seconds:p99")).EnumerateArray().Count(), n => n == 1, Step,
            () => "no quorum commit latency p99 in Prometheus");
        var rules = JsonDocument.Parse(await http.GetStringAsync("api/v1/rules")).RootElement.GetProperty("data").GetProperty("groups")
            .EnumerateArray().SelectMany(g => g.GetProperty("rules").EnumerateArray()).ToList();
        // The two `docker kill`ed VMs were started by the keeper; the crashed one by its restart policy alone.
        await Eventually.ReachAsync(() => Number("sum(vmkeeper_starts_total)"),
            starts => starts == "2", Step, () => "the VM keeper did not count exactly the 2 killed VMs it started again");
        Assert.Contains(rules, r => r.GetProperty("name").GetString() == "SafekeeperDown");
        Assert.All(rules, r => Assert.Equal("ok", r.GetProperty("health").GetString()));
    }

    private static async Task<string> Psql(string uri, string sql) =>
        await ComposeProject.RunAsync("psql", [uri, "-v", "ON_ERROR_STOP=1", "-tAc", sql]);

    private static async Task RequireImageAsync(string image)
    {
        try { await ComposeProject.RunAsync("docker", ["image", "inspect", image]); }
        catch (InvalidOperationException e)
        {
            throw new InvalidOperationException($"the image {image} is missing: run scripts/docker-images.sh (scripts/test.sh does) ({e.Message})");
        }
    }
}
