using Storage.Core;
using Storage.Core.Observability;
using Storage.Pageserver.Images;

namespace Storage.Pageserver;

/// <summary>The pageserver's /metrics, labelled by tenant and timeline.</summary>
internal sealed class PageserverMetrics(MetricsRegistry registry)
{
    public MetricsRegistry Registry { get; } = registry;

    public void Ingested(string tenant, string timeline, int bytes, Lsn ingested)
    {
        Registry.Counter("pageserver_wal_ingested_bytes_total", "WAL bytes received from safekeepers", Labels(tenant, timeline)).Add(bytes);
        Registry.Gauge("pageserver_ingested_lsn", "end of the WAL ingested and indexed", Labels(tenant, timeline)).Set(ingested.Value);
    }

    public void RemoteConsistent(string tenant, string timeline, Lsn lsn) =>
        Registry.Gauge("pageserver_remote_consistent_lsn", "object storage holds the timeline up to here", Labels(tenant, timeline)).Set(lsn.Value);

    public void ImageTaken(string tenant, string timeline, ImageLayer image)
    {
        Registry.Counter("pageserver_images_taken_total", "images taken from the replay instance", Labels(tenant, timeline)).Add(1);
        Registry.Gauge("pageserver_latest_image_lsn", "end LSN of the newest image", Labels(tenant, timeline)).Set(image.EndLsn);
    }

    public void Basebackup(string tenant, string timeline, long bytes)
    {
        Registry.Counter("pageserver_basebackups_total", "basebackups served", Labels(tenant, timeline)).Add(1);
        Registry.Counter("pageserver_basebackup_bytes_total", "basebackup tar bytes served", Labels(tenant, timeline)).Add(bytes);
    }

    public void Deleted(string tenant, string timeline, string what, int count) =>
        Registry.Counter("pageserver_retention_deleted_total", "layers removed by retention", [.. Labels(tenant, timeline), ("kind", what)]).Add(count);

    public void CorruptWal(string tenant, string timeline, string source) =>
        Registry.Counter("pageserver_wal_corrupt_total", "WAL received that did not decode (the source was switched, nothing of it kept)",
            [.. Labels(tenant, timeline), ("source", source)]).Add(1);

    /// <param name="activity">"ingest" or "housekeeping" (images, uploads).</param>
    public void DiskFull(string tenant, string timeline, string activity, bool full)
    {
        (string, string)[] labels = [.. Labels(tenant, timeline), ("activity", activity)];
        Registry.Gauge("pageserver_disk_full", "1 while the activity's writes fail for lack of disk space (it stopped and is retried)", labels).Set(full ? 1 : 0);
        if (full) Registry.Counter("pageserver_disk_full_episodes_total", "times the activity's writes started failing for lack of disk space", labels).Add(1);
    }

    private static (string, string)[] Labels(string tenant, string timeline) => [("tenant_id", tenant), ("timeline_id", timeline)];
}
