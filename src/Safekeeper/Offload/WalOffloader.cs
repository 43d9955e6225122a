using System.Text.Json;
using Microsoft.Extensions.Logging;
using Storage.Core;
using Storage.ObjectStore;

namespace Storage.Safekeeper.Offload;

/// <summary>Where a timeline's WAL lives in object storage.</summary>
public static class RemoteWalKeys
{
    public static string TimelinePrefix(string tenantId, string timelineId) => $"tenants/{tenantId}/timelines/{timelineId}/";
    public static string Segment(string tenantId, string timelineId, string segmentFileName) => TimelinePrefix(tenantId, timelineId) + "wal/" + segmentFileName;
    public static string OffloaderLease(string tenantId, string timelineId) => TimelinePrefix(tenantId, timelineId) + "wal/offloader.json";
}

/// <summary>Who offloads a timeline's WAL, until when (renewed every round while it lives).</summary>
internal sealed record OffloaderLease(ulong NodeId, DateTime ExpiresUtc);

/// <summary>
/// Copies finished, committed WAL segments of every timeline to object storage and advances the
/// timeline's backup LSN. One safekeeper per timeline does it: the holder of a lease object next to
/// the WAL, renewed every round; when its holder dies the lease runs out and another safekeeper
/// takes over where the backup LSN stands. Two holders for a moment (the lease is not a lock) only
/// upload the same bytes under the same keys twice.
/// </summary>
internal sealed class WalOffloader(TimelineRegistry registry, IObjectStore store, ulong nodeId, ILogger logger, SafekeeperMetrics metrics,
    TimeSpan interval, TimeSpan leaseDuration, TimeProvider time) : TimelineRounds(registry, logger, interval, "WAL offload", time)
{
    protected override Task RunAsync(Timeline timeline, CancellationToken ct) => OffloadAsync(timeline, ct);

    private async Task OffloadAsync(Timeline timeline, CancellationToken ct)
    {
        var (tenant, timelineId) = (timeline.Identity.TenantId, timeline.Identity.TimelineId);
        var geometry = new WalGeometry(timeline.Identity.WalSegmentSize);
        var (_, _, commit, _) = timeline.Positions();
        // WAL below the local start is not here, and is in object storage already: it was trimmed
        // (below our backup LSN) or skipped because peers had trimmed it (StartWalAt).
        var backup = Lsn.MaxOf(timeline.BackupLsn, timeline.LocalStartLsn);
        ulong first = geometry.SegmentNumber(backup), end = geometry.SegmentNumber(commit); // segments [first, end) are finished
        if (first >= end) return;
        if (!await HoldLeaseAsync(tenant, timelineId, ct))
        {
            await LearnBackupLsnAsync(timeline, geometry, first, end, ct);
            return;
        }

        for (ulong segment = first; segment < end; segment++)
        {
            var name = geometry.SegmentFileName(1, segment);
            var bytes = timeline.ReadCommittedSegment(segment);
            await store.PutAsync(RemoteWalKeys.Segment(tenant, timelineId, name), new MemoryStream(bytes, writable: false), ct);
            await timeline.AdvanceBackupLsnAsync(geometry.SegmentStart(segment + 1), ct);
            metrics.SegmentOffloaded();
            Log.LogInformation("offloaded WAL segment {Segment} of {TenantId}/{TimelineId}; backup LSN {BackupLsn}", name, tenant, timelineId, geometry.SegmentStart(segment + 1));
        }
    }

    /// <summary>
    /// While another safekeeper offloads, advances our own backup LSN over the segments found in
    /// object storage, so that we may trim our copy too. A segment there is the committed WAL
    /// (uploaded whole, below the holder's commit LSN), byte-identical to ours (invariant 2).
    /// </summary>
    private async Task LearnBackupLsnAsync(Timeline timeline, WalGeometry geometry, ulong first, ulong end, CancellationToken ct)
    {
        var (tenant, timelineId) = (timeline.Identity.TenantId, timeline.Identity.TimelineId);
        for (ulong segment = first; segment < end; segment++)
        {
            if (await store.HeadAsync(RemoteWalKeys.Segment(tenant, timelineId, geometry.SegmentFileName(1, segment)), ct) is null) return;
            await timeline.AdvanceBackupLsnAsync(geometry.SegmentStart(segment + 1), ct);
        }
    }

    /// <summary>Takes or renews the timeline's offloader lease; false while another live safekeeper holds it.</summary>
    private async Task<bool> HoldLeaseAsync(string tenant, string timelineId, CancellationToken ct)
    {
        var key = RemoteWalKeys.OffloaderLease(tenant, timelineId);
        var now = Time.GetUtcNow().UtcDateTime;
        try
        {
            await using var stream = await store.GetAsync(key, ct);
            var lease = await JsonSerializer.DeserializeAsync<OffloaderLease>(stream, cancellationToken: ct);
            if (lease is not null && lease.NodeId != nodeId && lease.ExpiresUtc > now) return false;
        }
        catch (ObjectNotFoundException) { }
        catch (Exception e) when (e is JsonException or ObjectCorruptException)
        {
            Log.LogWarning("offloader lease of {TenantId}/{TimelineId} is unreadable, taking it: {Error}", tenant, timelineId, e.Message);
        }
        var renewed = JsonSerializer.SerializeToUtf8Bytes(new OffloaderLease(nodeId, now + leaseDuration));
        await store.PutAsync(key, new MemoryStream(renewed), ct);
        return true;
    }
}
