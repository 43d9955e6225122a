using Storage.Core;
using Storage.Core.Api;
using Storage.Core.Grpc;

namespace Storage.Cli;

/// <summary>What `status` reports about one timeline on one safekeeper.</summary>
public sealed record TimelineReport(string TenantId, string TimelineId, ulong Term, string FlushLsn, string CommitLsn, string BackupLsn,
    string RemoteConsistentLsn, string LocalStartLsn);

/// <summary>What `status` reports about one safekeeper; Error is set when it could not be asked.</summary>
public sealed record SafekeeperReport(string Name, string AvailabilityZone, int? Pid, bool Alive, string Address,
    bool Reachable, string? Error, IReadOnlyList<TimelineReport> Timelines);

/// <summary>What `status` reports about one compute VM.</summary>
public sealed record ComputeReport(string Name, int? Pid, bool Alive, string Address, bool Reachable, string? Error,
    string State, string Endpoint, int PostgresPort, int PostgresPid, ulong Term, string StartLsn, string StreamedLsn, string CommitLsn, string Reason,
    ulong RestartCount = 0, string LastCrash = "");

/// <summary>What `status` reports about one pageserver; Error is set when it could not be asked.</summary>
public sealed record PageserverReport(string Name, int? Pid, bool Alive, string Address, bool Reachable, string? Error,
    IReadOnlyList<PageserverTimelineReport> Timelines);

/// <summary>Gathers the status of every process; an unreachable one is reported, never thrown.</summary>
public static class ClusterReport
{
    /// <summary>Short: status must not hang on a process that accepts connections but does not answer.</summary>
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(3);

    public static async Task<IReadOnlyList<SafekeeperReport>> GatherAsync(ClusterState state) =>
        await Task.WhenAll(state.Safekeepers.Select(GatherAsync));

    private static async Task<SafekeeperReport> GatherAsync(SafekeeperEntry sk)
    {
        bool alive = ClusterProcesses.IsRunning(sk);
        var address = $"127.0.0.1:{sk.Port}";
        if (!alive) return new(sk.Name, sk.AvailabilityZone, sk.Pid, false, address, false, "process not running", []);
        try
        {
            var list = await SafekeeperClient.ListTimelinesAsync(sk.Uri, Timeout);
            var timelines = list.Timelines
                .Select(t => new TimelineReport(t.Timeline.TenantId, t.Timeline.TimelineId, t.Term, new Lsn(t.FlushLsn).ToString(), new Lsn(t.CommitLsn).ToString(),
                    new Lsn(t.BackupLsn).ToString(), new Lsn(t.RemoteConsistentLsn).ToString(), new Lsn(t.LocalStartLsn).ToString()))
                .ToList();
            return new(sk.Name, sk.AvailabilityZone, sk.Pid, true, address, true, null, timelines);
        }
        catch (Exception e) when (IsUnreachable(e))
        {
            return new(sk.Name, sk.AvailabilityZone, sk.Pid, true, address, false, e.Message, []);
        }
    }

    public static async Task<IReadOnlyList<PageserverReport>> GatherPageserversAsync(ClusterState state) =>
        await Task.WhenAll(state.Pageservers.Select(GatherAsync));

    private static async Task<PageserverReport> GatherAsync(PageserverEntry ps)
    {
        bool alive = ClusterProcesses.IsRunning(ps);
        var address = $"127.0.0.1:{ps.Port}";
        if (!alive) return new(ps.Name, ps.Pid, false, address, false, "process not running", []);
        try
        {
            var list = await PageserverClient.ListTimelinesAsync(ps.Uri, Timeout);
            return new(ps.Name, ps.Pid, true, address, true, null, list.Timelines.Select(PageserverTimelineReport.From).ToList());
        }
        catch (Exception e) when (IsUnreachable(e))
        {
            return new(ps.Name, ps.Pid, true, address, false, e.Message, []);
        }
    }

    public static async Task<IReadOnlyList<ComputeReport>> GatherComputesAsync(ClusterState state) =>
        await Task.WhenAll(state.Computes.Select(GatherAsync));

    private static async Task<ComputeReport> GatherAsync(ComputeEntry vm)
    {
        bool alive = ClusterProcesses.IsRunning(vm);
        var address = $"127.0.0.1:{vm.Port}";
        if (!alive) return new(vm.Name, vm.Pid, false, address, false, "process not running", "DOWN", "", vm.PostgresPort, 0, 0, "", "", "", "");
        try
        {
            var s = await ComputeClient.StatusAsync(vm);
            return new(vm.Name, vm.Pid, true, address, true, null, s.State.ToString(), s.EndpointId, s.PostgresPort, s.PostgresPid, s.Term,
                new Lsn(s.StartLsn).ToString(), new Lsn(s.StreamedLsn).ToString(), new Lsn(s.CommitLsn).ToString(), s.Reason, s.RestartCount, s.LastCrash);
        }
        catch (Exception e) when (IsUnreachable(e))
        {
            return new(vm.Name, vm.Pid, true, address, false, e.Message, "UNREACHABLE", "", vm.PostgresPort, 0, 0, "", "", "", "");
        }
    }

    /// <summary>The failures of asking a live process that mean "not answering", not a bug.</summary>
    private static bool IsUnreachable(Exception e) => e is RpcException or HttpRequestException or IOException or OperationCanceledException;
}
