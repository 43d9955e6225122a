using System.Text.Json;
using Storage.Core;
using Storage.Core.Processes;

namespace Storage.Cli.Tests;

/// <summary>One local cluster driven through storagectl: up, status, kill, start, wal dump, down.</summary>
public sealed class ClusterLifecycleTests
{
    [Fact]
    public async Task Up_streams_wal_then_status_kill_start_dump_and_down_work()
    {
        await using var ctl = new StorageCtl();

        var up = await ctl.UpAsync();
        Assert.True(up.ExitCode == 0, up.ToString());
        var commitLine = up.Stdout.Split('\n').Single(l => l.StartsWith("commit LSN:"));
        Assert.True(Lsn.Parse(StripAnsi(commitLine)["commit LSN:".Length..].Trim()) > new Lsn(0x0100_0000), up.ToString());
        Assert.Equal(3, ctl.RecordedPids().OfType<int>().Count());

        // All three up with the same flush LSN (the demo waited for the quorum; the third catches up at once).
        var status = await StatusAsync(ctl);
        Assert.All(status, s => Assert.True(s.Reachable));
        Assert.Single(status.Select(s => s.FlushLsn).Distinct());

        var again = await ctl.UpAsync();
        Assert.Contains("already running", again.Stdout);

        var kill = await ctl.RunAsync("kill", "sk2");
        Assert.True(kill.ExitCode == 0, kill.ToString());
        status = await StatusAsync(ctl);
        Assert.False(status[1].Alive);
        Assert.False(status[1].Reachable);
        Assert.True(status[0].Reachable && status[2].Reachable);

        var start = await ctl.RunAsync("start", "sk2");
        Assert.True(start.ExitCode == 0, start.ToString());
        status = await StatusAsync(ctl);
        Assert.True(status[1].Reachable, start.ToString());

        var segment = Directory.EnumerateFiles(Path.Combine(ctl.WorkDir, ".storage", "sk1"), "0000*", SearchOption.AllDirectories).First();
        var dump = await ctl.RunAsync("wal", "dump", segment);
        Assert.True(dump.ExitCode == 0, dump.ToString());
        var lines = dump.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length > 100);
        Assert.All(lines, l => Assert.StartsWith("rmgr:", l));

        var pids = ctl.RecordedPids().OfType<int>().ToList();
        var down = await ctl.RunAsync("down");
        Assert.True(down.ExitCode == 0, down.ToString());
        Assert.All(pids, pid => Assert.False(ServiceProcess.IsAlive(pid)));
        Assert.All(ctl.RecordedPids(), pid => Assert.Null(pid));
    }

    private sealed record SafekeeperStatus(bool Alive, bool Reachable, string? FlushLsn);

    private static async Task<IReadOnlyList<SafekeeperStatus>> StatusAsync(StorageCtl ctl)
    {
        var result = await ctl.RunAsync("status", "--json");
        Assert.True(result.ExitCode == 0, result.ToString());
        using var doc = JsonDocument.Parse(result.Stdout);
        return doc.RootElement.GetProperty("safekeepers").EnumerateArray().Select(s =>
        {
            var timelines = s.GetProperty("timelines");
            return new SafekeeperStatus(s.GetProperty("alive").GetBoolean(), s.GetProperty("reachable").GetBoolean(),
                timelines.GetArrayLength() > 0 ? timelines[0].GetProperty("flushLsn").GetString() : null);
        }).ToList();
    }

    private static string StripAnsi(string s) => System.Text.RegularExpressions.Regex.Replace(s, @"\x1b\[[0-9;]*m", "");
}
