using Npgsql;

namespace Storage.Cli.Chaos;

/// <summary>The outcome of waiting for a healthy cluster: how long it took, or what was still wrong when time ran out.</summary>
public sealed record HealthWait(bool Healthy, TimeSpan Took, string? LastProblem);

/// <summary>
/// Whether the cluster serves again after a fault: every process of cluster.json runs and answers,
/// the controller sees both pageservers and the timeline has its attached and secondary pageserver
/// (each in that mode), a commit through the proxy succeeds (waking the endpoint if it was suspended),
/// and the endpoint is attached to a running VM with the pool full. Reads the same reports as `storagectl status`.
/// </summary>
public sealed class ClusterHealth(ClusterState state, ProxyConnector connector, string endpointId)
{
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(500);

    /// <summary>Polls until healthy or <paramref name="timeout"/>; never throws for an unhealthy cluster.</summary>
    public async Task<HealthWait> WaitAsync(TimeSpan timeout, CancellationToken ct)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        string? problem;
        while ((problem = await ProblemAsync()) is not null && clock.Elapsed < timeout && await Pause.ForAsync(Poll, ct)) { }
        return new HealthWait(problem is null, clock.Elapsed, problem);
    }

    /// <summary>The first thing found wrong, or null when the cluster is healthy.</summary>
    public async Task<string?> ProblemAsync()
    {
        if (state.Processes.FirstOrDefault(p => !ClusterProcesses.IsRunning(p)) is { } down) return $"{down.Name} is not running";
        if ((await ClusterReport.GatherAsync(state)).FirstOrDefault(s => !s.Reachable) is { } sk) return $"{sk.Name} does not answer: {sk.Error}";
        if (await PlacementProblemAsync() is { } placement) return placement;
        // The commit first: a connection wakes a suspended endpoint.
        if (await CommitProblemAsync() is { } commit) return commit;
        return await ComputeProblemAsync();
    }

    private async Task<string?> PlacementProblemAsync()
    {
        if (await ClusterReport.GatherControllerAsync(state) is not { } controller) return null; // an older cluster without one
        if (!controller.Reachable) return $"the controller does not answer: {controller.Error}";
        if (state.Pageservers.FirstOrDefault(p => !controller.OnlinePageservers.Contains(p.Name)) is { } offline) return $"the controller sees {offline.Name} offline";
        var placement = controller.Placements.FirstOrDefault(p => p.TenantId == state.TenantId && p.TimelineId == state.TimelineId);
        if (placement is null) return "the controller has not placed the timeline";
        if (placement.Secondary is "") return "the timeline has no secondary pageserver yet";
        foreach (var ps in await ClusterReport.GatherPageserversAsync(state))
        {
            if (!ps.Reachable) return $"{ps.Name} does not answer: {ps.Error}";
            var wanted = ps.Name == placement.Attached ? "attached" : ps.Name == placement.Secondary ? "secondary" : null;
            var mode = ps.Timelines.FirstOrDefault(t => t.TenantId == state.TenantId && t.TimelineId == state.TimelineId)?.Mode;
            if (wanted is not null && mode != wanted) return $"{ps.Name} holds the timeline as {mode ?? "nothing"}, the controller wants {wanted}";
        }
        return null;
    }

    private async Task<string?> ComputeProblemAsync()
    {
        var cp = await ClusterReport.GatherControlPlaneAsync(state);
        if (!cp.Proxy.Reachable) return $"the proxy's control plane does not answer: {cp.Proxy.Error}";
        var endpoint = cp.Endpoints.FirstOrDefault(e => e.Id == endpointId);
        if (endpoint is not { State: "attached", Vm: { } vmId }) return $"endpoint {endpointId} is {endpoint?.State ?? "unknown to the control plane"}";
        if (cp.Vms.FirstOrDefault(v => v.Name == vmId) is not { State: "Running" }) return $"the VM of {endpointId} ({vmId}) is not running its endpoint yet";
        if (cp.Vms.FirstOrDefault(v => !v.Reachable) is { } vm) return $"{vm.Name} does not answer: {vm.Error}";
        if (cp.Vms.Count < state.RequiredProxy.PoolSize) return $"the pool has {cp.Vms.Count} of {state.RequiredProxy.PoolSize} VMs";
        return null;
    }

    /// <summary>txid_current() gives the transaction an id, so its commit waits for the safekeepers' quorum.</summary>
    private async Task<string?> CommitProblemAsync()
    {
        try
        {
            await using var connection = await connector.OpenAsync();
            await using var command = new NpgsqlCommand("select txid_current()", connection);
            await command.ExecuteScalarAsync();
            return null;
        }
        catch (Exception e) when (ProxyConnector.IsClientFailure(e))
        {
            return $"a commit through the proxy failed: {ClientSession.Describe(e)}";
        }
    }
}
