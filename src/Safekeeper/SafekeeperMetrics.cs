using Storage.Core.Observability;

namespace Storage.Safekeeper;

/// <summary>The safekeeper's Prometheus metrics.</summary>
internal sealed class SafekeeperMetrics
{
    private readonly MetricsRegistry.Cell _offloaded, _deleted;
    private readonly MetricsRegistry.Cell _appends, _appendBytes, _flushes, _flushSeconds, _proposerStreams, _readStreams, _refusals;

    public SafekeeperMetrics(MetricsRegistry registry)
    {
        Registry = registry;
        _appends = registry.Counter("safekeeper_append_requests_total", "AppendRequests received from proposers");
        _appendBytes = registry.Counter("safekeeper_append_bytes_total", "WAL bytes received from proposers");
        _flushes = registry.Counter("safekeeper_wal_flushes_total", "fdatasync rounds of the group commit");
        _flushSeconds = registry.Counter("safekeeper_wal_flush_seconds_total", "Time spent in WAL fdatasync");
        _proposerStreams = registry.Gauge("safekeeper_proposer_streams", "Open proposer conversations");
        _readStreams = registry.Gauge("safekeeper_wal_read_streams", "Open WAL read streams");
        _offloaded = registry.Counter("safekeeper_wal_segments_offloaded_total", "WAL segments copied to object storage");
        _deleted = registry.Counter("safekeeper_wal_segments_deleted_total", "Local WAL segment files deleted below the trim horizon");
        _refusals = registry.Counter("safekeeper_refused_messages_total", "Proposer messages refused (wrong term, out of order, invalid)");
    }

    public MetricsRegistry Registry { get; }

    public void AppendReceived(int bytes) { _appends.Add(1); _appendBytes.Add(bytes); }
    public void Flushed(TimeSpan took) { _flushes.Add(1); _flushSeconds.Add(took.TotalSeconds); }
    public void ProposerStreamOpened() => _proposerStreams.Add(1);
    public void ProposerStreamClosed() => _proposerStreams.Add(-1);
    public void ReadStreamOpened() => _readStreams.Add(1);
    public void ReadStreamClosed() => _readStreams.Add(-1);
    public void Refused() => _refusals.Add(1);
    public void SegmentOffloaded() => _offloaded.Add(1);
    public void SegmentsDeleted(int count) => _deleted.Add(count);
}
