using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Storage.Core.Api;
using Storage.Core.Processes;
using Storage.Proto.Pageserver;

namespace Storage.StorageController;

/// <summary>
/// Makes the pageservers match the placements, once per heartbeat interval: promotes the secondary
/// of every timeline whose attached pageserver went offline (generation + 1), demotes an attached
/// copy the controller no longer wants (a pageserver that comes back after a failover), and puts
/// secondaries where they are missing.
/// </summary>
public sealed class Reconciler(PlacementBook book, NodeHealth health, ControllerOptions options, ControllerMetrics metrics, ILogger<Reconciler> log,
    TimeProvider time) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken ct)
    {
        await Task.Yield(); // the host's start goes on; passes run on the thread pool
        while (!ct.IsCancellationRequested)
        {
            try { await ReconcileOnceAsync(ct); }
            catch (Exception) when (ct.IsCancellationRequested) { return; }
            catch (Exception e) { log.LogWarning("reconcile pass failed, will retry: {Error}", e.Message); }
            try { await Task.Delay(options.HeartbeatInterval, time, ct); } catch (OperationCanceledException) { return; }
        }
    }

    public async Task ReconcileOnceAsync(CancellationToken ct)
    {
        foreach (var placement in book.Placements)
        {
            if (book.IsBeingCreated(placement.Key)) continue; // it exists nowhere yet
            if (!health.IsOnline(placement.Attached)) await FailOverAsync(placement, ct);
            else await ReconcileAsync(placement, ct);
        }
    }

    private async Task FailOverAsync(PlacementRecord placement, CancellationToken ct)
    {
        if (placement.Secondary is not { } secondary || !health.IsOnline(secondary)) return; // nothing to promote: wait
        var promoted = book.Promote(placement.Key, placement.Attached);
        if (promoted is null) return;
        metrics.Failover(promoted.TenantId, promoted.TimelineId);
        metrics.Generation(promoted);
        log.LogWarning("pageserver {Failed} is offline: timeline {TenantId}/{TimelineId} fails over to {NodeId} with generation {Generation}",
            placement.Attached, promoted.TenantId, promoted.TimelineId, promoted.Attached, promoted.Generation);
        await SetLocationAsync(promoted.Attached, promoted, LocationMode.Attached, ct);
    }

    /// <summary>Brings the attached and secondary node of one timeline to what the placement says, from their last heartbeats.</summary>
    private async Task ReconcileAsync(PlacementRecord placement, CancellationToken ct)
    {
        // A node that heard nothing of the timeline (a failover whose attach call failed before the
        // node had it), or holds it in another mode or generation.
        var attachedReport = Reported(placement.Attached, placement);
        if (health.Last(placement.Attached) is not null
            && (attachedReport is not { } a || a.Mode != LocationMode.Attached || a.Generation != placement.Generation))
            await SetLocationAsync(placement.Attached, placement, LocationMode.Attached, ct);

        if (placement.Secondary is null)
        {
            var candidate = health.OnlineNodes().FirstOrDefault(n => n != placement.Attached);
            if (candidate is not null && book.AssignSecondary(placement.Key, candidate) is { } withSecondary)
            {
                log.LogInformation("timeline {TenantId}/{TimelineId} gets a secondary on {NodeId}", placement.TenantId, placement.TimelineId, candidate);
                placement = withSecondary;
            }
        }
        if (placement.Secondary is { } secondary && health.IsOnline(secondary))
        {
            var report = Reported(secondary, placement);
            // A node that heard nothing of the timeline, or still thinks it is attached (it was, before a failover).
            if (health.Last(secondary) is not null && report?.Mode != LocationMode.Secondary)
                await SetLocationAsync(secondary, placement, LocationMode.Secondary, ct);
        }
    }

    private TimelineInfo? Reported(string nodeId, PlacementRecord placement) =>
        health.Last(nodeId)?.Timelines.FirstOrDefault(t => t.Timeline.TenantId == placement.TenantId && t.Timeline.TimelineId == placement.TimelineId);

    private async Task SetLocationAsync(string nodeId, PlacementRecord placement, LocationMode mode, CancellationToken ct)
    {
        if (book.Node(nodeId) is not { } node) return;
        try
        {
            var timeout = mode == LocationMode.Attached ? options.AttachTimeout : TimeSpan.FromSeconds(30);
            var info = await PageserverClient.SetLocationAsync(new Uri(node.Address), placement.TenantId, placement.TimelineId, mode,
                mode == LocationMode.Attached ? placement.Generation : 0, timeout, ct);
            health.Observed(nodeId, info);
            log.LogInformation("timeline {TenantId}/{TimelineId} is {Mode} on {NodeId} (generation {Generation}, ingested {Lsn})",
                placement.TenantId, placement.TimelineId, mode, nodeId, info.Generation, new Core.Lsn(info.IngestedLsn));
        }
        catch (Exception e) when (!ct.IsCancellationRequested)
        {
            log.LogWarning("could not make timeline {TenantId}/{TimelineId} {Mode} on {NodeId}, will retry: {Error}",
                placement.TenantId, placement.TimelineId, mode, nodeId, e.Message);
        }
    }
}
