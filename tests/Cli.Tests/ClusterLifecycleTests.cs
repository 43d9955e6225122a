using System.Text.Json;
using Npgsql;
using Storage.Core.Processes;

namespace Storage.Cli.Tests;

/// <summary>One local cluster driven through storagectl: up, SQL through the printed URI, status, kill, start, wal dump, down.</summary>
public sealed class ClusterLifecycleTests
{
    [Fact]
    public async Task Up_serves_postgres_then_status_kill_start_dump_and_down_work()
    {
        await using var ctl = new StorageCtl();

        var up = await ctl.UpAsync();
        Assert.True(up.ExitCode == 0, up.ToString());
        var uri = up.Stdout.Split('\n').Select(l => l.Trim()).Single(l => l.StartsWith("postgresql://"));
        Assert.Equal(4, ctl.RecordedPids().OfType<int>().Count());

        // What a user does with the printed string.
        var cs = ToNpgsql(new Uri(uri));
        await ExecAsync(cs, "create table greetings (id int primary key, text text)");
        await ExecAsync(cs, "insert into greetings values (1, 'hello'), (2, 'quorum')");
        Assert.Equal(2L, await ScalarAsync(cs, "select count(*) from greetings"));

        var (safekeepers, computes) = await StatusAsync(ctl);
        Assert.All(safekeepers, s => Assert.True(s.Reachable));
        Assert.Equal("Running", computes.Single().State);

        var again = await ctl.UpAsync();
        Assert.True(again.ExitCode == 0, again.ToString());
        Assert.Contains("already runs", again.Stdout);
        Assert.Contains(uri, again.Stdout);

        var kill = await ctl.RunAsync("kill", "sk2");
        Assert.True(kill.ExitCode == 0, kill.ToString());
        (safekeepers, _) = await StatusAsync(ctl);
        Assert.False(safekeepers[1].Alive);
        Assert.True(safekeepers[0].Reachable && safekeepers[2].Reachable);
        await ExecAsync(cs, "insert into greetings values (3, 'two of three')"); // still a quorum

        var start = await ctl.RunAsync("start", "sk2");
        Assert.True(start.ExitCode == 0, start.ToString());
        (safekeepers, _) = await StatusAsync(ctl);
        Assert.True(safekeepers[1].Reachable, start.ToString());

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

    private static async Task<(IReadOnlyList<SafekeeperStatus> Safekeepers, IReadOnlyList<ComputeStatus> Computes)> StatusAsync(StorageCtl ctl)
    {
        var result = await ctl.RunAsync("status", "--json");
        Assert.True(result.ExitCode == 0, result.ToString());
        using var doc = JsonDocument.Parse(result.Stdout);
        var safekeepers = doc.RootElement.GetProperty("safekeepers").EnumerateArray()
            .Select(s => new SafekeeperStatus(s.GetProperty("alive").GetBoolean(), s.GetProperty("reachable").GetBoolean())).ToList();
        var computes = doc.RootElement.GetProperty("computes").EnumerateArray()
            .Select(c => new ComputeStatus(c.GetProperty("state").GetString()!, c.GetProperty("restartCount").GetUInt64())).ToList();
        return (safekeepers, computes);
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
