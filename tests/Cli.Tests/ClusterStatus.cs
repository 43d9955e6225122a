using System.Text.Json;
using Storage.Core;

namespace Storage.Cli.Tests;

/// <summary>The parts of `storagectl status --json` the tests look at.</summary>
public sealed record ClusterStatus(string TimelineId, IReadOnlyList<ClusterStatus.Safekeeper> Safekeepers, IReadOnlyList<ClusterStatus.Pageserver> Pageservers,
    ClusterStatus.ProxyStatus Proxy, IReadOnlyList<ClusterStatus.Endpoint> Endpoints, IReadOnlyList<ClusterStatus.Vm> Vms, ClusterStatus.ControllerStatus? Controller)
{
    public sealed record Safekeeper(bool Alive, bool Reachable);
    public sealed record PageserverTimeline(string TimelineId, Lsn Start, Lsn Ingested, string Mode, string? AncestorTimelineId);
    public sealed record Pageserver(string Name, bool Alive, bool Reachable, IReadOnlyList<PageserverTimeline> Timelines);
    public sealed record Placement(string TimelineId, string Attached, string Secondary, ulong Generation);
    public sealed record ControllerStatus(bool Reachable, ulong Failovers, IReadOnlyList<string> OnlinePageservers, IReadOnlyList<Placement> Placements);

    public Pageserver PageserverNamed(string name) => Pageservers.Single(p => p.Name == name);
    public sealed record ProxyStatus(int? Pid, bool Alive, bool Reachable, string PostgresAddress);
    public sealed record Endpoint(string Id, string State, string? Vm);
    public sealed record Vm(string Name, int? Pid, string State, string PoolState, string Endpoint, int PostgresPid, ulong RestartCount);

    /// <summary>The VM serving <paramref name="endpointId"/>; fails the test if there is none.</summary>
    public Vm VmOf(string endpointId)
    {
        var endpoint = Endpoints.Single(e => e.Id == endpointId);
        return Vms.Single(v => v.Name == endpoint.Vm);
    }

    /// <summary>
    /// Reads status every 250 ms until <paramref name="done"/> holds (up to 60 s): on two loaded cores
    /// a fresh storagectl's first call may miss status's short timeout, so one read proves little.
    /// </summary>
    public static async Task<ClusterStatus> ReadUntilAsync(StorageCtl ctl, Func<ClusterStatus, bool> done, string what, params string[] logsOnFailure)
    {
        for (var deadline = DateTime.UtcNow.AddSeconds(60); ; await Task.Delay(250))
        {
            var (status, json) = await ReadWithJsonAsync(ctl);
            if (done(status)) return status;
            // The JSON, not the record: its lists would print as type names.
            Assert.True(DateTime.UtcNow < deadline, $"status never showed {what}: {json}\n{ctl.LogTails(60, logsOnFailure)}");
        }
    }

    public static async Task<ClusterStatus> ReadAsync(StorageCtl ctl) => (await ReadWithJsonAsync(ctl)).Status;

    private static async Task<(ClusterStatus Status, string Json)> ReadWithJsonAsync(StorageCtl ctl)
    {
        var result = await ctl.RunAsync("status", "--json");
        Assert.True(result.ExitCode == 0, result.ToString());
        return (Parse(result.Stdout), result.Stdout);
    }

    private static ClusterStatus Parse(string json)
    {
        using var doc = JsonDocument.Parse(json);
        var root = doc.RootElement;
        static string? Str(JsonElement e, string name) => e.GetProperty(name).GetString();
        static int? Int(JsonElement e, string name) => e.GetProperty(name).ValueKind == JsonValueKind.Number ? e.GetProperty(name).GetInt32() : null;
        var safekeepers = root.GetProperty("safekeepers").EnumerateArray()
            .Select(s => new Safekeeper(s.GetProperty("alive").GetBoolean(), s.GetProperty("reachable").GetBoolean())).ToList();
        var pageservers = root.GetProperty("pageservers").EnumerateArray()
            .Select(p => new Pageserver(Str(p, "name")!, p.GetProperty("alive").GetBoolean(), p.GetProperty("reachable").GetBoolean(),
                p.GetProperty("timelines").EnumerateArray().Select(t => new PageserverTimeline(Str(t, "timelineId")!,
                    Lsn.Parse(Str(t, "startLsn")!), Lsn.Parse(Str(t, "ingestedLsn")!), Str(t, "mode")!, Str(t, "ancestorTimelineId"))).ToList()))
            .ToList();
        var c = root.GetProperty("controller");
        var controller = c.ValueKind != JsonValueKind.Object ? null : new ControllerStatus(c.GetProperty("reachable").GetBoolean(), c.GetProperty("failovers").GetUInt64(),
            c.GetProperty("onlinePageservers").EnumerateArray().Select(n => n.GetString()!).ToList(),
            c.GetProperty("placements").EnumerateArray().Select(p => new Placement(Str(p, "timelineId")!, Str(p, "attached")!, Str(p, "secondary")!,
                p.GetProperty("generation").GetUInt64())).ToList());
        var proxy = root.GetProperty("proxy");
        var endpoints = root.GetProperty("endpoints").EnumerateArray().Select(e => new Endpoint(Str(e, "id")!, Str(e, "state")!, Str(e, "vm"))).ToList();
        var vms = root.GetProperty("vms").EnumerateArray().Select(v => new Vm(Str(v, "name")!, Int(v, "pid"), Str(v, "state")!, Str(v, "poolState")!,
            Str(v, "endpoint")!, v.GetProperty("postgresPid").GetInt32(), v.GetProperty("restartCount").GetUInt64())).ToList();
        return new ClusterStatus(Str(root, "timelineId")!, safekeepers, pageservers,
            new ProxyStatus(Int(proxy, "pid"), proxy.GetProperty("alive").GetBoolean(), proxy.GetProperty("reachable").GetBoolean(), Str(proxy, "postgresAddress")!),
            endpoints, vms, controller);
    }
}
