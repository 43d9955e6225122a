using Npgsql;
using Storage.Core.Processes;
using Storage.Testing;

namespace Storage.Cli.Tests;

/// <summary>
/// One local cluster driven through storagectl: up, SQL through the proxy's printed URI, status,
/// kill/start of storage, branches, wal dump, then chaos under writes (VM, PostgreSQL, proxy), down and up.
/// </summary>
public sealed class ClusterLifecycleTests
{
    private static readonly TimeSpan Recovery = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Up_serves_postgres_through_the_proxy_survives_kills_and_keeps_data_across_down_and_up()
    {
        await using var ctl = new StorageCtl();

        var up = await ctl.UpAsync();
        Assert.True(up.ExitCode == 0, up.ToString());
        var uri = up.Stdout.Split('\n').Select(l => l.Trim()).Single(l => l.StartsWith("postgresql://"));
        Assert.Equal(ctl.BasePort + 19, new Uri(uri).Port); // the proxy, not a VM
        Assert.Equal(7, ctl.RecordedPids().OfType<int>().Count()); // sk1..sk3, ps1, ps2, controller, proxy

        // What a user does with the printed string.
        var cs = ToNpgsql(new Uri(uri));
        await ExecAsync(cs, "create table greetings (id int primary key, text text)");
        await ExecAsync(cs, "insert into greetings values (1, 'hello'), (2, 'quorum')");
        Assert.Equal(2L, await ScalarAsync(cs, "select count(*) from greetings"));

        var status = await ClusterStatus.ReadUntilAsync(ctl,
            s => s.Safekeepers.All(sk => sk.Reachable) && s.Proxy.Reachable && ServesMain(s) && s.Vms.Count == 2 && s.Controller?.Placements.Count > 0,
            "every safekeeper, the proxy with its pool and the controller reachable");
        Assert.True(status.Proxy.Reachable, status.ToString());
        Assert.Equal($"127.0.0.1:{ctl.BasePort + 19}", status.Proxy.PostgresAddress);
        Assert.Equal("attached", status.Endpoints.Single(e => e.Id == "main").State);
        Assert.Equal("Running", status.VmOf("main").State);
        Assert.Equal(2, status.Vms.Count); // the pool
        var placement = status.Controller!.Placements.Single(p => p.TimelineId == status.TimelineId);
        Assert.Equal(("ps1", "ps2", 1UL), (placement.Attached, placement.Secondary, placement.Generation));
        // ps1 streams the WAL from the safekeepers: our writes are ingested past the timeline's start.
        var timelineId = await WaitForIngestAsync(ctl);

        var again = await ctl.UpAsync();
        Assert.True(again.ExitCode == 0, again.ToString());
        Assert.Contains("already runs", again.Stdout);
        Assert.Contains(uri, again.Stdout);

        await StorageKillsAndBranchesAsync(ctl, cs, timelineId);

        // The compute's first WAL segment (initdb's WAL and ours) decodes record by record.
        var vm = (await ClusterStatus.ReadUntilAsync(ctl, ServesMain, "the VM of main")).VmOf("main").Name;
        var segment = Path.Combine(ctl.WorkDir, ".storage", "controlplane", "vms", vm, "pgdata", "pg_wal", "000000010000000000000001");
        var dump = await ctl.RunAsync("wal", "dump", segment);
        Assert.True(dump.ExitCode == 0, dump.ToString());
        var lines = dump.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length > 100, dump.ToString());
        Assert.All(lines, l => Assert.StartsWith("rmgr:", l));

        // Chaos under a write load: every acknowledged row survives, the same URI serves again.
        await ExecAsync(cs, "create table chaos (id int primary key)");
        var acked = new List<int>();
        acked.AddRange(await UnderWritesAsync(ctl, cs, "vm:main", firstId: 1));
        var pgBefore = await ClusterStatus.ReadUntilAsync(ctl, ServesMain, "the VM of main");
        acked.AddRange(await UnderWritesAsync(ctl, cs, "postgres:main", firstId: 100_000));
        var pgAfter = (await ClusterStatus.ReadUntilAsync(ctl, s => ServesMain(s) && s.VmOf("main").RestartCount >= 1, "main's PostgreSQL restarted")).VmOf("main");
        Assert.Equal(pgBefore.VmOf("main").Name, pgAfter.Name); // the agent restarted PostgreSQL on the same VM
        Assert.True(pgAfter.RestartCount >= 1, pgAfter.ToString());
        acked.AddRange(await UnderWritesAsync(ctl, cs, "proxy", firstId: 200_000));
        await AssertRowsAsync(cs, acked);
        Assert.Equal(3L, await ScalarAsync(cs, "select count(*) from greetings"));

        // down stops everything, the VMs included; up brings the same data back.
        var before = await ClusterStatus.ReadUntilAsync(ctl, s => ServesMain(s) && s.VmOf("main").PostgresPid > 0 && s.Vms.All(v => v.Pid is not null),
            "every VM's agent and main's PostgreSQL");
        var pids = ctl.RecordedPids().OfType<int>().Concat(before.Vms.Select(v => v.Pid).OfType<int>())
            .Concat(before.Vms.Select(v => v.PostgresPid).Where(p => p > 0)).ToList();
        Assert.True(pids.Count >= 10, string.Join(",", pids)); // 7 processes, 2 VMs, a PostgreSQL
        var down = await ctl.RunAsync("down");
        Assert.True(down.ExitCode == 0, down.ToString());
        Assert.All(pids, pid => Assert.False(ServiceProcess.IsAlive(pid), $"pid {pid} is alive after down\n{down}"));
        Assert.All(ctl.RecordedPids(), pid => Assert.Null(pid));

        var upAgain = await ctl.UpAsync();
        Assert.True(upAgain.ExitCode == 0, upAgain.ToString());
        Assert.Contains(uri, upAgain.Stdout);
        await AssertRowsAsync(cs, acked);
        Assert.Equal(3L, await ScalarAsync(cs, "select count(*) from greetings"));
    }

    /// <summary>Safekeeper, pageserver and controller kill/start (a pageserver failover), branches, timeline list.</summary>
    private static async Task StorageKillsAndBranchesAsync(StorageCtl ctl, string cs, string timelineId)
    {
        var kill = await ctl.RunAsync("kill", "sk2");
        Assert.True(kill.ExitCode == 0, kill.ToString());
        var status = await ClusterStatus.ReadUntilAsync(ctl, s => s.Safekeepers[0].Reachable && s.Safekeepers[2].Reachable, "sk1 and sk3 reachable");
        Assert.False(status.Safekeepers[1].Alive);
        await ExecAsync(cs, "insert into greetings values (3, 'two of three')"); // still a quorum

        var start = await ctl.RunAsync("start", "sk2");
        Assert.True(start.ExitCode == 0, start.ToString());
        await ClusterStatus.ReadUntilAsync(ctl, s => s.Safekeepers[1].Reachable, "sk2 reachable again");

        // Branches through the pageserver: at what it has ingested (`branch create`), and at a point in time.
        var branchId = Guid.NewGuid().ToString("N");
        var branch = await ctl.RunAsync("branch", "create", "--from", timelineId, "--timeline", branchId);
        Assert.True(branch.ExitCode == 0, branch.ToString());
        Assert.Contains($"timeline {branchId} start ", branch.Stdout);
        var byTime = await ctl.RunAsync("timeline", "branch", "--from", timelineId, "--at", DateTimeOffset.UtcNow.ToString("O"));
        Assert.True(byTime.ExitCode == 0, byTime.ToString());

        // The attached pageserver killed: the controller promotes ps2 (generation 2), which ingests
        // on; ps1 started again is its secondary. Writes never stop: computes need no pageserver.
        var killPs = await ctl.RunAsync("kill", "ps1");
        Assert.True(killPs.ExitCode == 0, killPs.ToString());
        Assert.False((await ClusterStatus.ReadAsync(ctl)).PageserverNamed("ps1").Alive);
        // What ps1 holds cannot be listed: the list says so rather than silently showing less.
        var partial = await ctl.RunAsync("timeline", "list");
        Assert.Contains("warning: ps1 could not list its timelines", partial.Stderr);
        await ExecAsync(cs, "insert into greetings values (4, 'no pageserver needed')");
        var promoted = await WaitForPlacementAsync(ctl, timelineId, p => p.Attached == "ps2");
        Assert.Equal(("ps1", 2UL), (promoted.Secondary, promoted.Generation));
        var startPs = await ctl.RunAsync("start", "ps1");
        Assert.True(startPs.ExitCode == 0, startPs.ToString());
        await WaitForIngestAsync(ctl);
        await ClusterStatus.ReadUntilAsync(ctl,
            s => s.PageserverNamed("ps1").Timelines.SingleOrDefault(t => t.TimelineId == timelineId)?.Mode == "secondary", "ps1 as the secondary");

        // The controller is not on any data path: killed, writes go on; started, it knows its placements.
        Assert.True((await ctl.RunAsync("kill", "controller")).ExitCode == 0);
        await ExecAsync(cs, "insert into greetings values (5, 'no controller needed')");
        var startController = await ctl.RunAsync("start", "controller");
        Assert.True(startController.ExitCode == 0, startController.ToString());
        Assert.Equal("ps2", (await WaitForPlacementAsync(ctl, timelineId, _ => true)).Attached);
        await ExecAsync(cs, "delete from greetings where id in (4, 5)");
        // The branches fail over on their own reconcile passes: wait until each is attached on exactly one pageserver.
        await ClusterStatus.ReadUntilAsync(ctl, s =>
        {
            var branches = s.Pageservers.SelectMany(p => p.Timelines).Where(t => t.Mode == "attached" && t.AncestorTimelineId == timelineId).ToList();
            return branches.Count == 2 && branches.Select(t => t.TimelineId).Distinct().Count() == 2;
        }, "both branches attached on one pageserver each", "controller", "ps1", "ps2");
        var list = await ctl.RunAsync("timeline", "list");
        Assert.True(list.ExitCode == 0, list.ToString());
        Assert.Contains(branchId, list.Stdout);
        Assert.Contains($"{timelineId} (default)", list.Stdout);
        Assert.True(list.Stdout.Split($"{timelineId}@").Length - 1 == 2, list.ToString()); // both branches name their ancestor
    }

    /// <summary>Whether status shows endpoint main on a VM it lists (a probe that timed out shows neither).</summary>
    private static bool ServesMain(ClusterStatus s) =>
        s.Endpoints.SingleOrDefault(e => e.Id == "main") is { Vm: { } vm } && s.Vms.Any(v => v.Name == vm);

    /// <summary>
    /// Kills <paramref name="component"/> while a client writes through the URI (a killed proxy is
    /// started again), waits until writes are acknowledged again, and returns the acknowledged ids.
    /// </summary>
    private static async Task<IReadOnlyList<int>> UnderWritesAsync(StorageCtl ctl, string cs, string component, int firstId)
    {
        var writes = WriteLoop.Start(cs, "chaos", firstId);
        await writes.WaitForMoreAsync(3, Recovery);
        var kill = await ctl.RunAsync("kill", component);
        Assert.True(kill.ExitCode == 0, kill.ToString());
        if (component == "proxy")
        {
            var start = await ctl.RunAsync("start", "proxy");
            Assert.True(start.ExitCode == 0, start.ToString());
        }
        // A new connection through the same URI works (once the compute is back: the proxy retries
        // its connect for ~10 s, a restart on a starved machine can take longer), and the loop commits again.
        Assert.Equal(1, await Sql.RunWithRetryAsync(cs, "select 1", Recovery));
        await writes.WaitForMoreAsync(3, Recovery);
        return await writes.StopAsync();
    }

    private static async Task AssertRowsAsync(string cs, IReadOnlyList<int> acked)
    {
        await using var connection = new NpgsqlConnection(cs);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("select count(*) from chaos where id = any(@ids)", connection);
        command.Parameters.AddWithValue("ids", acked.ToArray());
        Assert.Equal((long)acked.Count, await command.ExecuteScalarAsync());
    }

    /// <summary>Waits (up to 60 s) until the attached pageserver has ingested WAL of the default timeline beyond its start; returns that timeline's id.</summary>
    private static async Task<string> WaitForIngestAsync(StorageCtl ctl)
    {
        static bool Ingested(ClusterStatus s) => s.Pageservers.SelectMany(p => p.Timelines)
            .Any(t => t.TimelineId == s.TimelineId && t.Mode == "attached" && t.Ingested > t.Start);
        return (await ClusterStatus.ReadUntilAsync(ctl, Ingested, "WAL of the default timeline ingested past its start")).TimelineId;
    }

    /// <summary>Waits (up to 60 s) until the controller's placement of the timeline satisfies <paramref name="condition"/>.</summary>
    private static async Task<ClusterStatus.Placement> WaitForPlacementAsync(StorageCtl ctl, string timelineId, Func<ClusterStatus.Placement, bool> condition)
    {
        static ClusterStatus.Placement? Of(ClusterStatus s, string timelineId) =>
            s.Controller is { Reachable: true } c ? c.Placements.SingleOrDefault(p => p.TimelineId == timelineId) : null;
        var status = await ClusterStatus.ReadUntilAsync(ctl, s => Of(s, timelineId) is { } p && condition(p), $"the wanted placement of {timelineId}");
        return Of(status, timelineId)!;
    }

    /// <summary>Timeout 60 (the proxy's own wait for a VM): a connection made during a failover waits in the proxy while the endpoint is reattached.</summary>
    private static string ToNpgsql(Uri uri)
    {
        var user = uri.UserInfo.Split(':');
        return $"Host={uri.Host};Port={uri.Port};Username={Uri.UnescapeDataString(user[0])};Password={Uri.UnescapeDataString(user[1])};Database={uri.AbsolutePath.TrimStart('/')};Pooling=false;Timeout=60";
    }

    private static async Task ExecAsync(string cs, string sql)
    {
        await using var connection = new NpgsqlConnection(cs);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    private static async Task<object?> ScalarAsync(string cs, string sql)
    {
        await using var connection = new NpgsqlConnection(cs);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return await command.ExecuteScalarAsync();
    }
}
