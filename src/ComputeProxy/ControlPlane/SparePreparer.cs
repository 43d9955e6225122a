using System.Collections.Concurrent;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Storage.Core.Api;
using Storage.Proto.Compute;

namespace Storage.ComputeProxy.ControlPlane;

/// <summary>
/// Keeps idle VMs prepared for the attached endpoints' timelines (the newest image unpacked, see
/// the agent's Prepare), so that when an endpoint's VM dies, its reattach fetches only the WAL since
/// that image instead of the whole database. Each idle VM keeps the timeline it is prepared for
/// while that endpoint stays attached; otherwise it takes the attached timeline with the fewest
/// prepared VMs. Every round refreshes them: a VM re-prepares when the pageserver has a newer image.
/// </summary>
public sealed class SparePreparer(ControlPlaneOptions options, EndpointRegistry registry, VmPool pool, PageserverRoute pageservers,
    ControlPlaneMetrics metrics, ILogger log, TimeProvider time) : BackgroundService
{
    private static readonly TimeSpan PrepareTimeout = TimeSpan.FromMinutes(2);
    private readonly ConcurrentDictionary<string, Task> _inFlight = new();

    protected override async Task ExecuteAsync(CancellationToken ct)
    {
        if (options.PrepareInterval <= TimeSpan.Zero) return; // switched off
        using var timer = new PeriodicTimer(options.PrepareInterval, time);
        try
        {
            do
            {
                try { Round(ct); }
                catch (Exception e) when (e is not OperationCanceledException) { log.LogError("preparing idle VMs failed: {Error}", e.Message); }
            } while (await timer.WaitForNextTickAsync(ct));
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested) { }
    }

    /// <summary>Starts a prepare on every idle VM that has none running.</summary>
    private void Round(CancellationToken ct)
    {
        var wanted = registry.List().Where(e => e.VmId is not null).DistinctBy(e => (e.TenantId, e.TimelineId)).ToList();
        var idle = pool.Snapshot().Where(v => v.State == VmState.Idle).ToList();
        foreach (var (vm, endpoint) in Assign(idle, wanted, (v, e) => v.IsPreparedFor(e.TenantId, e.TimelineId)))
        {
            if (_inFlight.ContainsKey(vm.Id)) continue;
            var task = PrepareAsync(vm, endpoint, ct);
            if (!_inFlight.TryAdd(vm.Id, task)) continue;
            _ = task.ContinueWith(_ => _inFlight.TryRemove(vm.Id, out var _), TaskScheduler.Default);
        }
    }

    /// <summary>
    /// Which timeline (by one of its attached endpoints) each idle VM is prepared for: the one it is
    /// prepared for already, if still wanted; otherwise the wanted timeline with the fewest prepared VMs.
    /// </summary>
    public static IReadOnlyList<(TVm Vm, EndpointRecord Endpoint)> Assign<TVm>(IReadOnlyList<TVm> idle, IReadOnlyList<EndpointRecord> wanted,
        Func<TVm, EndpointRecord, bool> isPreparedFor)
    {
        if (wanted.Count == 0) return [];
        var keep = idle.Select(vm => (Vm: vm, Endpoint: wanted.FirstOrDefault(e => isPreparedFor(vm, e)))).ToList();
        var prepared = wanted.ToDictionary(e => e, e => keep.Count(k => k.Endpoint == e));
        return keep.Select(k =>
        {
            if (k.Endpoint is not null) return (k.Vm, k.Endpoint);
            var fewest = wanted.MinBy(e => prepared[e])!;
            prepared[fewest]++;
            return (k.Vm, fewest);
        }).ToList();
    }

    private async Task PrepareAsync(Vm vm, EndpointRecord endpoint, CancellationToken ct)
    {
        await Task.Yield(); // registered in _inFlight first
        try
        {
            var request = new PrepareRequest { TenantId = endpoint.TenantId, TimelineId = endpoint.TimelineId, Token = options.ComputeTokens.For(endpoint.TenantId, endpoint.Id) };
            request.Pageservers.AddRange((await pageservers.ForTimelineAsync(endpoint.TenantId, endpoint.TimelineId, ct)).Select(u => u.ToString()));
            var before = vm.Prepared;
            var prepared = await ComputeClient.PrepareAsync(vm.AgentUri, request, PrepareTimeout, ct);
            vm.Prepared = prepared;
            if (before?.ImageLsn != prepared.ImageLsn || before?.TimelineId != prepared.TimelineId)
            {
                metrics.Prepares.Inc();
                log.LogInformation("VM {VmId} prepared for endpoint {EndpointId} ({TenantId}/{TimelineId}) at image {ImageLsn}",
                    vm.Id, endpoint.Id, endpoint.TenantId, endpoint.TimelineId, new Storage.Core.Lsn(prepared.ImageLsn));
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested) { }
        catch (Exception e)
        {
            // Attached meanwhile, no image yet, a pageserver down: the next round tries again.
            log.LogDebug("VM {VmId} not prepared for {EndpointId}: {Error}", vm.Id, endpoint.Id, e.Message);
        }
    }
}
