using Storage.Core;
using Storage.Core.Grpc;

namespace Storage.Cli;

/// <summary>What `status` reports about one timeline on one safekeeper.</summary>
public sealed record TimelineReport(string TenantId, string TimelineId, ulong Term, string FlushLsn, string CommitLsn);

/// <summary>What `status` reports about one safekeeper; Error is set when it could not be asked.</summary>
public sealed record SafekeeperReport(string Name, string AvailabilityZone, int? Pid, bool Alive, string Address,
    bool Reachable, string? Error, IReadOnlyList<TimelineReport> Timelines);

/// <summary>Gathers the status of every safekeeper; an unreachable one is reported, never thrown.</summary>
public static class ClusterReport
{
    public static async Task<IReadOnlyList<SafekeeperReport>> GatherAsync(ClusterState state) =>
        await Task.WhenAll(state.Safekeepers.Select(GatherAsync));

    private static async Task<SafekeeperReport> GatherAsync(SafekeeperEntry sk)
    {
        bool alive = SafekeeperProcesses.IsRunning(sk);
        var address = $"127.0.0.1:{sk.Port}";
        if (!alive) return new(sk.Name, sk.AvailabilityZone, sk.Pid, false, address, false, "process not running", []);
        try
        {
            var list = await SafekeeperClient.ListTimelinesAsync(sk);
            var timelines = list.Timelines
                .Select(t => new TimelineReport(t.Timeline.TenantId, t.Timeline.TimelineId, t.Term, new Lsn(t.FlushLsn).ToString(), new Lsn(t.CommitLsn).ToString()))
                .ToList();
            return new(sk.Name, sk.AvailabilityZone, sk.Pid, true, address, true, null, timelines);
        }
        catch (Exception e) when (e is RpcException or HttpRequestException or IOException or OperationCanceledException)
        {
            return new(sk.Name, sk.AvailabilityZone, sk.Pid, true, address, false, e.Message, []);
        }
    }
}
