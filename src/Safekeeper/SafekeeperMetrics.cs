using Prometheus;
using Storage.Core.Observability;

namespace Storage.Safekeeper;

/// <summary>The safekeeper's Prometheus metrics.</summary>
internal sealed class SafekeeperMetrics : ServiceMetrics
{
    private static readonly string[] TimelineLabels = ["tenant_id", "timeline_id"];
    private readonly Counter _appends, _appendBytes, _flushes, _flushSecondsTotal, _offloaded, _deleted, _refusals;
    private readonly Histogram _flushSeconds;
    private readonly Gauge _proposerStreams, _readStreams, _broken;
    private static readonly string[] StandbyLabels = ["tenant_id", "timeline_id", "application_name"];
    private readonly Gauge _replicationConnections, _replicationSentLsn, _standbyFlushLsn, _standbyApplyLsn;
    private readonly Counter _replicationRefused;
    private readonly Gauge _term, _flushLsn, _commitLsn, _backupLsn, _remoteConsistentLsn, _localStartLsn;

    public SafekeeperMetrics()
    {
        _appends = Factory.CreateCounter("safekeeper_append_requests_total", "AppendRequests received from proposers");
        _appendBytes = Factory.CreateCounter("safekeeper_append_bytes_total", "WAL bytes received from proposers");
        _flushes = Factory.CreateCounter("safekeeper_wal_flushes_total", "fdatasync rounds of the group commit");
        _flushSecondsTotal = Factory.CreateCounter("safekeeper_wal_flush_seconds_total", "Time spent in WAL fdatasync");
        _flushSeconds = Latency("safekeeper_wal_flush_duration_seconds", "Time of each WAL fdatasync round of the group commit");
        _proposerStreams = Factory.CreateGauge("safekeeper_proposer_streams", "Open proposer conversations");
        _readStreams = Factory.CreateGauge("safekeeper_wal_read_streams", "Open WAL read streams");
        _offloaded = Factory.CreateCounter("safekeeper_wal_segments_offloaded_total", "WAL segments copied to object storage");
        _deleted = Factory.CreateCounter("safekeeper_wal_segments_deleted_total", "Local WAL segment files deleted below the trim horizon");
        _refusals = Factory.CreateCounter("safekeeper_refused_messages_total", "Proposer messages refused (wrong term, out of order, invalid)");
        _broken = Factory.CreateGauge("safekeeper_broken_timelines", "Timelines out of service because their files failed checks");
        _term = Factory.CreateGauge("safekeeper_term", "Current term per timeline", TimelineLabels);
        _flushLsn = Factory.CreateGauge("safekeeper_flush_lsn", "Durable WAL end per timeline (bytes)", TimelineLabels);
        _commitLsn = Factory.CreateGauge("safekeeper_commit_lsn", "Commit LSN per timeline (bytes)", TimelineLabels);
        _backupLsn = Factory.CreateGauge("safekeeper_backup_lsn", "WAL below this is in object storage, per timeline (bytes)", TimelineLabels);
        _remoteConsistentLsn = Factory.CreateGauge("safekeeper_remote_consistent_lsn", "WAL below this is in a pageserver's remote copy, per timeline (bytes)", TimelineLabels);
        _localStartLsn = Factory.CreateGauge("safekeeper_local_start_lsn", "First WAL LSN still on this safekeeper's disk, per timeline (bytes)", TimelineLabels);
        _replicationConnections = Factory.CreateGauge("safekeeper_replication_connections", "Open PostgreSQL replication-protocol connections");
        _replicationRefused = Factory.CreateCounter("safekeeper_replication_refused_total", "Replication connections refused, by reason", new CounterConfiguration { LabelNames = ["reason"] });
        _replicationSentLsn = Factory.CreateGauge("safekeeper_replication_sent_lsn", "End of the WAL sent to each streaming standby (bytes)", StandbyLabels);
        _standbyFlushLsn = Factory.CreateGauge("safekeeper_replication_standby_flush_lsn", "WAL flushed by each streaming standby, as it reports (bytes)", StandbyLabels);
        _standbyApplyLsn = Factory.CreateGauge("safekeeper_replication_standby_apply_lsn", "WAL applied by each streaming standby, as it reports (bytes)", StandbyLabels);
    }

    public void ReplicationConnectionOpened() => _replicationConnections.Inc();
    public void ReplicationConnectionClosed() => _replicationConnections.Dec();
    public void ReplicationRefused(string reason) => _replicationRefused.WithLabels(reason).Inc();
    public void ReplicationSent(StandbyLabel standby, ulong lsn) => _replicationSentLsn.WithLabels(standby.Values).Set(lsn);
    public void StandbyReported(StandbyLabel standby, ulong flush, ulong apply)
    {
        _standbyFlushLsn.WithLabels(standby.Values).Set(flush);
        _standbyApplyLsn.WithLabels(standby.Values).Set(apply);
    }
    /// <summary>A standby stopped streaming: its series go.</summary>
    public void StandbyGone(StandbyLabel standby)
    {
        _replicationSentLsn.RemoveLabelled(standby.Values);
        _standbyFlushLsn.RemoveLabelled(standby.Values);
        _standbyApplyLsn.RemoveLabelled(standby.Values);
    }

    /// <summary>A timeline's positions, refreshed before each scrape.</summary>
    public void Timeline(string tenantId, string timelineId, ulong term, ulong flush, ulong commit, ulong backup, ulong remoteConsistent, ulong localStart)
    {
        _term.WithLabels(tenantId, timelineId).Set(term);
        _flushLsn.WithLabels(tenantId, timelineId).Set(flush);
        _commitLsn.WithLabels(tenantId, timelineId).Set(commit);
        _backupLsn.WithLabels(tenantId, timelineId).Set(backup);
        _remoteConsistentLsn.WithLabels(tenantId, timelineId).Set(remoteConsistent);
        _localStartLsn.WithLabels(tenantId, timelineId).Set(localStart);
    }

    public void BrokenTimelines(int count) => _broken.Set(count);

    public void AppendReceived(int bytes) { _appends.Inc(); _appendBytes.Inc(bytes); }
    public void Flushed(TimeSpan took)
    {
        _flushes.Inc();
        _flushSecondsTotal.Inc(took.TotalSeconds);
        _flushSeconds.Observe(took.TotalSeconds);
    }
    public void ProposerStreamOpened() => _proposerStreams.Inc();
    public void ProposerStreamClosed() => _proposerStreams.Dec();
    public void ReadStreamOpened() => _readStreams.Inc();
    public void ReadStreamClosed() => _readStreams.Dec();
    public void Refused() => _refusals.Inc();
    public void SegmentOffloaded() => _offloaded.Inc();
    public void SegmentsDeleted(int count) => _deleted.Inc(count);
}

/// <summary>The labels of a streaming standby's series: its timeline and application_name.</summary>
internal sealed record StandbyLabel(string TenantId, string TimelineId, string ApplicationName)
{
    public string[] Values => [TenantId, TimelineId, ApplicationName];
}
