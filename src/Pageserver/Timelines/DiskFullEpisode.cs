using Microsoft.Extensions.Logging;
using Storage.Core;

namespace Storage.Pageserver.Timelines;

/// <summary>
/// A run of "no space left on device" failures of one activity of a timeline (ingest, or
/// housekeeping: images, uploads): logged once as an error when it starts (the tenant, timeline,
/// LSN and what failed) and once when a write of that activity succeeds again, and shown meanwhile
/// as <c>pageserver_disk_full{activity}</c> = 1. Whatever failed is retried by its own loop. One
/// instance per activity, so a step that fails while another succeeds is not logged again and again.
/// </summary>
internal sealed class DiskFullEpisode(string activity, string tenantId, string timelineId, ILogger logger, PageserverMetrics metrics)
{
    private int _active;

    public bool Active => Volatile.Read(ref _active) == 1;

    public void Failed(Lsn lsn, Exception e)
    {
        if (Interlocked.Exchange(ref _active, 1) == 0)
        {
            metrics.DiskFull(tenantId, timelineId, activity, full: true);
            logger.LogError("disk full: {Activity} of {TenantId}/{TimelineId} stopped at {Lsn}: {Error}. Every file is still whole (old or new); "
                + "it is retried with backoff and resumes by itself once there is space", activity, tenantId, timelineId, lsn, e.Message);
        }
        else logger.LogDebug("still no space for {Activity} of {TenantId}/{TimelineId} at {Lsn}: {Error}", activity, tenantId, timelineId, lsn, e.Message);
    }

    /// <summary>A write of the activity succeeded: the episode, if any, is over.</summary>
    public void Succeeded(Lsn lsn)
    {
        if (Interlocked.Exchange(ref _active, 0) == 0) return;
        metrics.DiskFull(tenantId, timelineId, activity, full: false);
        logger.LogInformation("disk space is back: {Activity} of {TenantId}/{TimelineId} resumed at {Lsn}", activity, tenantId, timelineId, lsn);
    }
}
