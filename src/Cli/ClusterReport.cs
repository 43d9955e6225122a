using Storage.Core;
using Storage.Core.Api;
using Storage.Core.Grpc;

namespace Storage.Cli;

/// <summary>What `status` reports about one timeline on one safekeeper.</summary>
public sealed record TimelineReport(string TenantId, string TimelineId, ulong Term, string FlushLsn, string CommitLsn, string BackupLsn);

/// <summary>What `status` reports about one safekeeper; Error is set when it could not be asked.</summary>
public sealed record SafekeeperReport(string Name, string AvailabilityZone, int? Pid, bool Alive, string Address,
    bool Reachable, string? Error, IReadOnlyList<TimelineReport> Timelines);

/// <summary>What `status` reports about one compute VM.</summary>
public sealed record ComputeReport(string Name, int? Pid, bool Alive, string Address, bool Reachable, string? Error,
    string State, string Endpoint, int PostgresPort, int PostgresPid, ulong Term, string StartLsn, string StreamedLsn, string CommitLsn, string Reason,
    ulong RestartCount = 0, string LastCrash = "");

/// <summary>Gathers the status of every safekeeper; an unreachable one is reported, never thrown.</summary>
public static class ClusterReport
{
    public static async Task<IReadOnlyList<SafekeeperReport>> GatherAsync(ClusterState state) =>
        await Task.WhenAll(state.Safekeepers.Select(GatherAsync));

    private static async Task<SafekeeperReport> GatherAsync(SafekeeperEntry sk)
    {
        bool alive = ClusterProcesses.IsRunning(sk);
        var address = $"127.0.0.1:{sk.Port}";
        if (!alive) return new(sk.Name, sk.AvailabilityZone, sk.Pid, false, address, false, "process not running", []);
        try
        {
            var list = await SafekeeperClient.ListTimelinesAsync(sk.Uri, TimeSpan.FromSeconds(3));
            var timelines = list.Timelines
                .Select(t => new TimelineReport(t.Timeline.TenantId, t.Timeline.TimelineId, t.Term, new Lsn(t.FlushLsn).ToString(), new Lsn(t.CommitLsn).ToString(), new Lsn(t.BackupLsn).ToString()))
                .ToList();
            return new(sk.Name, sk.AvailabilityZone, sk.Pid, true, address, true, null, timelines);
        }
        catch (Exception e) when (e is RpcException or HttpRequestException or IOException or OperationCanceledException)
        {
            return new(sk.Name, sk.AvailabilityZone, sk.Pid, true, address, false, e.Message, []);
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
        catch (Exception e) when (e is RpcException or HttpRequestException or IOException or OperationCanceledException)
        {
            return new(vm.Name, vm.Pid, true, address, false, e.Message, "UNREACHABLE", "", vm.PostgresPort, 0, 0, "", "", "", "");
        }
    }
}
