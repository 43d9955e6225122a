using System.Text.Json;
using Npgsql;
using Storage.Core;
using Storage.Core.Processes;

namespace Storage.Cli.Tests;

/// <summary>One local cluster driven through storagectl: up, SQL through the printed URI, status, kill, start, branch, wal dump, down.</summary>
public sealed class ClusterLifecycleTests
{
    [Fact]
    public async Task Up_serves_postgres_then_status_kill_start_branch_dump_and_down_work()
    {
        await using var ctl = new StorageCtl();

        var up = await ctl.UpAsync();
        Assert.True(up.ExitCode == 0, up.ToString());
        var uri = up.Stdout.Split('\n').Select(l => l.Trim()).Single(l => l.StartsWith("postgresql://"));
        Assert.Equal(5, ctl.RecordedPids().OfType<int>().Count()); // sk1..sk3, ps1, vm1

        // What a user does with the printed string.
        var cs = ToNpgsql(new Uri(uri));
        await ExecAsync(cs, "create table greetings (id int primary key, text text)");
        await ExecAsync(cs, "insert into greetings values (1, 'hello'), (2, 'quorum')");
        Assert.Equal(2L, await ScalarAsync(cs, "select count(*) from greetings"));

        var (_, safekeepers, computes, _) = await StatusAsync(ctl);
        Assert.All(safekeepers, s => Assert.True(s.Reachable));
        Assert.Equal("Running", computes.Single().State);
        // ps1 streams the WAL from the safekeepers: our writes are ingested past the timeline's start.
        var timelineId = await WaitForIngestAsync(ctl);

        var again = await ctl.UpAsync();
        Assert.True(again.ExitCode == 0, again.ToString());
        Assert.Contains("already runs", again.Stdout);
        Assert.Contains(uri, again.Stdout);

        var kill = await ctl.RunAsync("kill", "sk2");
        Assert.True(kill.ExitCode == 0, kill.ToString());
        (_, safekeepers, _, _) = await StatusAsync(ctl);
        Assert.False(safekeepers[1].Alive);
        Assert.True(safekeepers[0].Reachable && safekeepers[2].Reachable);
        await ExecAsync(cs, "insert into greetings values (3, 'two of three')"); // still a quorum

        var start = await ctl.RunAsync("start", "sk2");
        Assert.True(start.ExitCode == 0, start.ToString());
        (_, safekeepers, _, _) = await StatusAsync(ctl);
        Assert.True(safekeepers[1].Reachable, start.ToString());

        // Branches through the pageserver: at what it has ingested, and at a point in time.
        var branchId = Guid.NewGuid().ToString("N");
        var branch = await ctl.RunAsync("timeline", "branch", "--from", timelineId, "--timeline", branchId);
        Assert.True(branch.ExitCode == 0, branch.ToString());
        Assert.Contains($"timeline {branchId} start ", branch.Stdout);
        var byTime = await ctl.RunAsync("timeline", "branch", "--from", timelineId, "--at", DateTimeOffset.UtcNow.ToString("O"));
        Assert.True(byTime.ExitCode == 0, byTime.ToString());

        // A killed pageserver shows as down; started again, it still knows every timeline.
        var killPs = await ctl.RunAsync("kill", "ps1");
        Assert.True(killPs.ExitCode == 0, killPs.ToString());
        Assert.False((await StatusAsync(ctl)).Pageservers.Single().Alive);
        var startPs = await ctl.RunAsync("start", "ps1");
        Assert.True(startPs.ExitCode == 0, startPs.ToString());
        await WaitForIngestAsync(ctl);
        var list = await ctl.RunAsync("timeline", "list");
        Assert.True(list.ExitCode == 0, list.ToString());
        Assert.Contains(branchId, list.Stdout);
        Assert.Contains($"{timelineId} (default)", list.Stdout);
        Assert.Equal(2, list.Stdout.Split($"{timelineId}@").Length - 1); // both branches name their ancestor

        // The compute's first WAL segment (initdb's WAL and ours) decodes record by record.
        var segment = Path.Combine(ctl.WorkDir, ".storage", "vm1", "pgdata", "pg_wal", "000000010000000000000001");
        var dump = await ctl.RunAsync("wal", "dump", segment);
        Assert.True(dump.ExitCode == 0, dump.ToString());
        var lines = dump.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length > 100, dump.ToString());
        Assert.All(lines, l => Assert.StartsWith("rmgr:", l));

        var killPostgres = await ctl.RunAsync("kill", "postgres");
        Assert.True(killPostgres.ExitCode == 0, killPostgres.ToString());
        // The VM restarts its PostgreSQL from a fresh basebackup: the rows are all there.
        for (int i = 0; i < 600 && (await StatusAsync(ctl)).Computes.Single() is var c && (c.State != "Running" || c.RestartCount == 0); i++) await Task.Delay(100);
        var restarted = (await StatusAsync(ctl)).Computes.Single();
        Assert.Equal("Running", restarted.State);
        Assert.Equal(1UL, restarted.RestartCount);
        Assert.Equal(3L, await ScalarAsync(cs, "select count(*) from greetings"));

        var pids = ctl.RecordedPids().OfType<int>().ToList();
        var down = await ctl.RunAsync("down");
        Assert.True(down.ExitCode == 0, down.ToString());
        Assert.All(pids, pid => Assert.False(ServiceProcess.IsAlive(pid)));
        Assert.All(ctl.RecordedPids(), pid => Assert.Null(pid));
    }

    private sealed record SafekeeperStatus(bool Alive, bool Reachable);
    private sealed record ComputeStatus(string State, ulong RestartCount);
    private sealed record PageserverTimeline(string TimelineId, Lsn Start, Lsn Ingested);
    private sealed record PageserverStatus(bool Alive, bool Reachable, IReadOnlyList<PageserverTimeline> Timelines);

    private sealed record Status(string TimelineId, IReadOnlyList<SafekeeperStatus> Safekeepers, IReadOnlyList<ComputeStatus> Computes,
        IReadOnlyList<PageserverStatus> Pageservers);

    private static async Task<Status> StatusAsync(StorageCtl ctl)
    {
        var result = await ctl.RunAsync("status", "--json");
        Assert.True(result.ExitCode == 0, result.ToString());
        using var doc = JsonDocument.Parse(result.Stdout);
        var safekeepers = doc.RootElement.GetProperty("safekeepers").EnumerateArray()
            .Select(s => new SafekeeperStatus(s.GetProperty("alive").GetBoolean(), s.GetProperty("reachable").GetBoolean())).ToList();
        var computes = doc.RootElement.GetProperty("computes").EnumerateArray()
            .Select(c => new ComputeStatus(c.GetProperty("state").GetString()!, c.GetProperty("restartCount").GetUInt64())).ToList();
        var pageservers = doc.RootElement.GetProperty("pageservers").EnumerateArray()
            .Select(p => new PageserverStatus(p.GetProperty("alive").GetBoolean(), p.GetProperty("reachable").GetBoolean(),
                p.GetProperty("timelines").EnumerateArray().Select(t => new PageserverTimeline(t.GetProperty("timelineId").GetString()!,
                    Lsn.Parse(t.GetProperty("startLsn").GetString()!), Lsn.Parse(t.GetProperty("ingestedLsn").GetString()!))).ToList()))
            .ToList();
        return new Status(doc.RootElement.GetProperty("timelineId").GetString()!, safekeepers, computes, pageservers);
    }

    /// <summary>Waits (up to 60 s) until ps1 has ingested WAL of the default timeline beyond its start; returns that timeline's id.</summary>
    private static async Task<string> WaitForIngestAsync(StorageCtl ctl)
    {
        for (var deadline = DateTime.UtcNow.AddSeconds(60); ; await Task.Delay(250))
        {
            var (timelineId, _, _, pageservers) = await StatusAsync(ctl);
            var timeline = pageservers.Single().Timelines.SingleOrDefault(t => t.TimelineId == timelineId);
            if (timeline is not null && timeline.Ingested > timeline.Start) return timelineId;
            Assert.True(DateTime.UtcNow < deadline, $"ps1 did not ingest WAL of {timelineId} past its start: {timeline}");
        }
    }

    private static string ToNpgsql(Uri uri)
    {
        var user = uri.UserInfo.Split(':');
        return $"Host={uri.Host};Port={uri.Port};Username={Uri.UnescapeDataString(user[0])};Password={Uri.UnescapeDataString(user[1])};Database={uri.AbsolutePath.TrimStart('/')};Pooling=false;Timeout=15";
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
