using Storage.Core;
using Storage.Core.Api;
using Storage.ComputeProxy.ControlPlane;
using Storage.Core.Processes;

namespace Storage.Cli;

/// <summary>What `status` reports about one timeline on one safekeeper.</summary>
public sealed record TimelineReport(string TenantId, string TimelineId, ulong Term, string FlushLsn, string CommitLsn, string BackupLsn,
    string RemoteConsistentLsn, string LocalStartLsn);

/// <summary>What `status` reports about one safekeeper; Error is set when it could not be asked.</summary>
public sealed record SafekeeperReport(string Name, string AvailabilityZone, int? Pid, bool Alive, string Address,
    bool Reachable, string? Error, IReadOnlyList<TimelineReport> Timelines);

/// <summary>
/// What `status` reports about one compute VM: the control plane's view (PoolState: idle, attaching,
/// attached, detaching) and its agent's (State: IDLE, RUNNING, ...; term and LSNs of its walproposer).
/// Image: the image an idle VM holds ready ("prepared"), or the one a running data directory was built on.
/// </summary>
public sealed record ComputeReport(string Name, int? Pid, bool Alive, string Address, bool Reachable, string? Error,
    string State, string Endpoint, int PostgresPort, int PostgresPid, ulong Term, string StartLsn, string StreamedLsn, string CommitLsn, string Reason,
    ulong RestartCount = 0, string LastCrash = "", string PoolState = "", string Image = "");

/// <summary>What `status` reports about the proxy process and its control plane.</summary>
public sealed record ProxyReport(int? Pid, bool Alive, string PostgresAddress, string AdminAddress, bool Reachable, string? Error);

/// <summary>What `status` reports about one endpoint of the control plane (no password).</summary>
public sealed record EndpointReport(string Id, string TenantId, string TimelineId, string State, string? Vm, string? Address, int Sessions, double SuspendTimeoutSeconds);

/// <summary>The proxy, and what its control plane says about endpoints and VMs (empty when it cannot be asked).</summary>
public sealed record ControlPlaneReport(ProxyReport Proxy, IReadOnlyList<EndpointReport> Endpoints, IReadOnlyList<ComputeReport> Vms);

/// <summary>What `status` reports about one pageserver; Error is set when it could not be asked.</summary>
public sealed record PageserverReport(string Name, int? Pid, bool Alive, string Address, bool Reachable, string? Error,
    IReadOnlyList<PageserverTimelineReport> Timelines);

/// <summary>One timeline as the storage controller places it.</summary>
public sealed record PlacementReport(string TenantId, string TimelineId, string Attached, string Secondary, ulong Generation);

/// <summary>What `status` reports about the storage controller: its pageservers' health and the placements.</summary>
public sealed record ControllerReport(int? Pid, bool Alive, string Address, bool Reachable, string? Error, ulong Failovers,
    IReadOnlyList<string> OnlinePageservers, IReadOnlyList<PlacementReport> Placements);

/// <summary>Gathers the status of every process; an unreachable one is reported, never thrown.</summary>
public static class ClusterReport
{
    /// <summary>Short: status must not hang on a process that accepts connections but does not answer.</summary>
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(5);

    public static async Task<IReadOnlyList<SafekeeperReport>> GatherAsync(ClusterState state) =>
        await Task.WhenAll(state.Safekeepers.Select(GatherAsync));

    private static Task<SafekeeperReport> GatherAsync(SafekeeperEntry sk)
    {
        var address = $"127.0.0.1:{sk.Port}";
        return AskAsync(sk, async () =>
        {
            var list = await SafekeeperClient.ListTimelinesAsync(sk.Uri, Timeout);
            var timelines = list.Timelines
                .Select(t => new TimelineReport(t.Timeline.TenantId, t.Timeline.TimelineId, t.Term, new Lsn(t.FlushLsn).ToString(), new Lsn(t.CommitLsn).ToString(),
                    new Lsn(t.BackupLsn).ToString(), new Lsn(t.RemoteConsistentLsn).ToString(), new Lsn(t.LocalStartLsn).ToString()))
                .ToList();
            return new SafekeeperReport(sk.Name, sk.AvailabilityZone, sk.Pid, true, address, true, null, timelines);
        }, (alive, error) => new(sk.Name, sk.AvailabilityZone, sk.Pid, alive, address, false, error, []));
    }

    public static async Task<IReadOnlyList<PageserverReport>> GatherPageserversAsync(ClusterState state) =>
        await Task.WhenAll(state.Pageservers.Select(GatherAsync));

    private static Task<PageserverReport> GatherAsync(PageserverEntry ps)
    {
        var address = $"127.0.0.1:{ps.Port}";
        return AskAsync(ps, async () =>
        {
            var list = await PageserverClient.ListTimelinesAsync(ps.Uri, Timeout);
            return new PageserverReport(ps.Name, ps.Pid, true, address, true, null, list.Timelines.Select(PageserverTimelineReport.From).ToList());
        }, (alive, error) => new(ps.Name, ps.Pid, alive, address, false, error, []));
    }

    public static async Task<ControllerReport?> GatherControllerAsync(ClusterState state)
    {
        if (state.Controller is not { } controller) return null;
        var address = $"127.0.0.1:{controller.Port}";
        return await AskAsync(controller, async () =>
        {
            var status = await ControllerClient.StatusAsync(controller.Uri, Timeout);
            return new ControllerReport(controller.Pid, true, address, true, null, status.Failovers,
                status.Nodes.Where(n => n.Online).Select(n => n.NodeId).ToList(),
                status.Placements.Select(p => new PlacementReport(p.Timeline.TenantId, p.Timeline.TimelineId, p.AttachedNode, p.SecondaryNode, p.Generation)).ToList());
        }, (alive, error) => new(controller.Pid, alive, address, false, error, 0, [], []));
    }

    /// <summary>
    /// Asks a recorded process for its report; one whose process is gone, or that does not answer,
    /// gets <paramref name="unanswered"/> (alive or not, and why).
    /// </summary>
    private static async Task<T> AskAsync<T>(IProcessEntry process, Func<Task<T>> ask, Func<bool, string, T> unanswered)
    {
        if (!ClusterProcesses.IsRunning(process)) return unanswered(false, "process not running");
        try { return await ask(); }
        catch (Exception e) when (IsUnreachable(e)) { return unanswered(true, e.Message); }
    }

    public static async Task<ControlPlaneReport> GatherControlPlaneAsync(ClusterState state)
    {
        if (state.Proxy is not { } proxy) return new(new(null, false, "-", "-", false, "no proxy yet: `storagectl up` migrates this cluster"), [], []);
        bool alive = ClusterProcesses.IsRunning(proxy);
        ProxyReport Report(bool reachable, string? error) =>
            new(proxy.Pid, alive, $"127.0.0.1:{proxy.Port}", $"127.0.0.1:{proxy.AdminPort}", reachable, error);
        if (!alive) return new(Report(false, "process not running"), [], []);
        AdminApi.StatusView status;
        try
        {
            using var admin = new AdminClient(proxy);
            using var timeout = new CancellationTokenSource(Timeout);
            status = await admin.StatusAsync(timeout.Token);
        }
        catch (Exception e) when (e is CliError || IsUnreachable(e))
        {
            return new(Report(false, e.Message), [], []);
        }
        var endpoints = status.Endpoints.Select(e => new EndpointReport(e.Id, e.TenantId, e.TimelineId, e.State, e.VmId,
            e.Host is null ? null : $"{e.Host}:{e.Port}", e.Sessions, e.SuspendTimeoutSeconds)).ToList();
        return new(Report(true, null), endpoints, await Task.WhenAll(status.Vms.Select(GatherAsync)));
    }

    /// <summary>A VM as the control plane lists it, with what its agent says about itself.</summary>
    private static async Task<ComputeReport> GatherAsync(AdminApi.VmView vm)
    {
        var address = $"127.0.0.1:{vm.GrpcPort}";
        try
        {
            var s = await ComputeClient.StatusAsync(new Uri($"http://{address}"), TimeSpan.FromSeconds(3));
            return new(vm.Id, vm.Pid, true, address, true, null, s.State.ToString(), s.EndpointId, s.PostgresPort, s.PostgresPid, s.Term,
                new Lsn(s.StartLsn).ToString(), new Lsn(s.StreamedLsn).ToString(), new Lsn(s.CommitLsn).ToString(), string.Join("; ", new[] { s.Reason, s.RetentionNote }.Where(t => t.Length > 0)), s.RestartCount, s.LastCrash, vm.State,
                ImageOf(s));
        }
        catch (Exception e) when (IsUnreachable(e))
        {
            bool alive = ServiceProcess.IsAlive(vm.Pid);
            return new(vm.Id, vm.Pid, alive, address, false, e.Message, alive ? "UNREACHABLE" : "DOWN", vm.EndpointId ?? "", vm.PostgresPort, 0, 0, "", "", "", "",
                PoolState: vm.State);
        }
    }

    private static string ImageOf(Storage.Proto.Compute.ComputeStatus s) =>
        s.Prepared is { ImageLsn: > 0 } p ? $"prepared {p.TimelineId[..8]} {new Lsn(p.ImageLsn)}"
        : s.BuiltOnImageLsn > 0 ? $"{new Lsn(s.BuiltOnImageLsn)}{(s.BuiltOnPreparedImage ? " (prepared)" : "")}"
        : "";

    /// <summary>The failures of asking a live process that mean "not answering", not a bug.</summary>
    private static bool IsUnreachable(Exception e) => e is Grpc.Core.RpcException or HttpRequestException or IOException or OperationCanceledException;
}
