using Prometheus;
using Storage.Core;
using Storage.Core.Observability;
using Storage.Pageserver.Images;

namespace Storage.Pageserver;

/// <summary>The pageserver's /metrics, labelled by tenant and timeline.</summary>
internal sealed class PageserverMetrics : ServiceMetrics
{
    private static readonly string[] TimelineLabels = ["tenant_id", "timeline_id"];
    private readonly Counter _ingestedBytes, _imagesTaken, _basebackups, _basebackupBytes, _retentionDeleted, _corruptWal, _diskFullEpisodes;
    private readonly Gauge _ingestedLsn, _remoteConsistentLsn, _latestImageLsn, _diskFull;
    private readonly Histogram _basebackupSeconds;

    public PageserverMetrics()
    {
        _ingestedBytes = Factory.CreateCounter("pageserver_wal_ingested_bytes_total", "WAL bytes received from safekeepers", TimelineLabels);
        _ingestedLsn = Factory.CreateGauge("pageserver_ingested_lsn", "end of the WAL ingested and indexed", TimelineLabels);
        _remoteConsistentLsn = Factory.CreateGauge("pageserver_remote_consistent_lsn", "object storage holds the timeline up to here", TimelineLabels);
        _imagesTaken = Factory.CreateCounter("pageserver_images_taken_total", "images taken from the replay instance", TimelineLabels);
        _latestImageLsn = Factory.CreateGauge("pageserver_latest_image_lsn", "end LSN of the newest image", TimelineLabels);
        _basebackups = Factory.CreateCounter("pageserver_basebackups_total", "basebackups served", TimelineLabels);
        _basebackupBytes = Factory.CreateCounter("pageserver_basebackup_bytes_total", "basebackup tar bytes served", TimelineLabels);
        _basebackupSeconds = Latency("pageserver_basebackup_duration_seconds",
            "time to serve a basebackup, from the request (including the wait for its LSN to be ingested) to its last chunk; part: whole or wal_only", "part");
        _retentionDeleted = Factory.CreateCounter("pageserver_retention_deleted_total", "layers removed by retention", [.. TimelineLabels, "kind"]);
        _corruptWal = Factory.CreateCounter("pageserver_wal_corrupt_total", "WAL received that did not decode (the source was switched, nothing of it kept)",
            [.. TimelineLabels, "source"]);
        _diskFull = Factory.CreateGauge("pageserver_disk_full", "1 while the activity's writes fail for lack of disk space (it stopped and is retried)",
            [.. TimelineLabels, "activity"]);
        _diskFullEpisodes = Factory.CreateCounter("pageserver_disk_full_episodes_total", "times the activity's writes started failing for lack of disk space",
            [.. TimelineLabels, "activity"]);
    }

    public void Ingested(string tenant, string timeline, int bytes, Lsn ingested)
    {
        _ingestedBytes.WithLabels(tenant, timeline).Inc(bytes);
        _ingestedLsn.WithLabels(tenant, timeline).Set(ingested.Value);
    }

    public void RemoteConsistent(string tenant, string timeline, Lsn lsn) => _remoteConsistentLsn.WithLabels(tenant, timeline).Set(lsn.Value);

    public void ImageTaken(string tenant, string timeline, ImageLayer image)
    {
        _imagesTaken.WithLabels(tenant, timeline).Inc();
        _latestImageLsn.WithLabels(tenant, timeline).Set(image.EndLsn);
    }

    /// <param name="walOnly">Only pg_wal was sent (the caller held the image's files).</param>
    public void Basebackup(string tenant, string timeline, long bytes, bool walOnly, TimeSpan took)
    {
        _basebackups.WithLabels(tenant, timeline).Inc();
        _basebackupBytes.WithLabels(tenant, timeline).Inc(bytes);
        _basebackupSeconds.WithLabels(walOnly ? "wal_only" : "whole").Observe(took.TotalSeconds);
    }

    public void Deleted(string tenant, string timeline, string what, int count) => _retentionDeleted.WithLabels(tenant, timeline, what).Inc(count);

    public void CorruptWal(string tenant, string timeline, string source) => _corruptWal.WithLabels(tenant, timeline, source).Inc();

    /// <param name="activity">"ingest" or "housekeeping" (images, uploads).</param>
    public void DiskFull(string tenant, string timeline, string activity, bool full)
    {
        _diskFull.WithLabels(tenant, timeline, activity).Set(full ? 1 : 0);
        if (full) _diskFullEpisodes.WithLabels(tenant, timeline, activity).Inc();
    }
}
