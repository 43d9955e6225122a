using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Storage.Core;
using Storage.Core.Api;
using Storage.Core.Errors;
using Storage.Core.Storage;
using Storage.Proto.Safekeeper;
using Storage.Safekeeper.Consensus;
using Storage.Safekeeper.Storage;

namespace Storage.Safekeeper;

/// <summary>
/// Every tenant timeline this safekeeper holds, under &lt;data&gt;/&lt;tenant&gt;/&lt;timeline&gt;/.
/// A timeline whose files fail their checks is kept out of service with its error (reported to
/// every caller) while the others keep working.
/// </summary>
internal sealed class TimelineRegistry : IAsyncDisposable
{
    private readonly ConcurrentDictionary<string, Timeline> _timelines = new();
    private readonly ConcurrentDictionary<string, string> _broken = new();
    private readonly SemaphoreSlim _createLock = new(1, 1);
    private readonly string _dataDir;
    private readonly NodeIdentity _node;
    private readonly ILoggerFactory _loggers;
    private readonly ILogger _log;
    private readonly SafekeeperMetrics _metrics;
    private readonly DiskSync _sync;

    public TimelineRegistry(string dataDir, NodeIdentity node, ILoggerFactory loggers, SafekeeperMetrics metrics, DiskSync? sync = null)
    {
        _sync = sync ?? DiskSync.Default;
        _dataDir = dataDir;
        _node = node;
        _loggers = loggers;
        _log = loggers.CreateLogger("Storage.Safekeeper.Timelines");
        _metrics = metrics;
        Directory.CreateDirectory(dataDir);
        metrics.OnCollect(CollectMetrics);
    }

    public NodeIdentity Node => _node;
    public IEnumerable<Timeline> All => _timelines.Values;
    public IReadOnlyDictionary<string, string> Broken => _broken;

    /// <summary>Loads every timeline found on disk.</summary>
    public void LoadAll()
    {
        foreach (var tenantDir in Directory.EnumerateDirectories(_dataDir))
        foreach (var timelineDir in Directory.EnumerateDirectories(tenantDir))
        {
            var key = $"{Path.GetFileName(tenantDir)}/{Path.GetFileName(timelineDir)}";
            if (!TimelineIds.IsValid(Path.GetFileName(tenantDir)) || !TimelineIds.IsValid(Path.GetFileName(timelineDir))) continue;
            try
            {
                var (identity, saved) = ControlFile.Load(timelineDir);
                var (end, state) = WalRecovery.Recover(timelineDir, identity, saved, _sync, _log);
                _timelines[key] = new Timeline(timelineDir, identity, state, end, _node, _loggers.CreateLogger("Storage.Safekeeper.Timeline"), _metrics);
                _log.LogInformation("loaded timeline {TenantId}/{TimelineId}: term {Term}, flush {FlushLsn}, commit {CommitLsn}",
                    identity.TenantId, identity.TimelineId, state.Term, end, state.CommitLsn);
            }
            catch (Exception e) when (e is CorruptFileException or IOException or Core.Wal.WalDecodeException)
            {
                _broken[key] = e.Message;
                _log.LogCritical("timeline {Timeline} is out of service: {Error}", key, e.Message);
            }
        }
    }

    /// <summary>The timeline, or a <see cref="ServiceException"/> a client understands (unknown, broken).</summary>
    public Timeline Get(TimelineKey? key)
    {
        var k = KeyOf(key);
        if (_timelines.TryGetValue(k, out var timeline))
        {
            if (timeline.FlushError is { } error) throw new TemporarilyUnavailableException($"timeline {k} cannot flush WAL: {error.Message}");
            return timeline;
        }
        if (_broken.TryGetValue(k, out var reason)) throw new DataLossException($"timeline {k} is out of service: {reason}");
        throw new NotFoundException($"timeline {k} is not known to safekeeper {_node.NodeId}");
    }

    public async Task<Timeline> CreateAsync(CreateTimelineRequest request)
    {
        var k = KeyOf(request.Timeline);
        var start = new Lsn(request.StartLsn);
        if (!start.IsValid) throw new InvalidRequestException("start_lsn must be set");
        int segmentSize = request.WalSegmentSize == 0 ? WalGeometry.DefaultSegmentSize : (int)request.WalSegmentSize;
        try { _ = new WalGeometry(segmentSize); }
        catch (ArgumentOutOfRangeException e) { throw new InvalidRequestException(e.Message); }

        await _createLock.WaitAsync();
        try
        {
            if (_timelines.TryGetValue(k, out var existing))
            {
                var (_, _, _, existingStart) = existing.Positions();
                if (existingStart != start)
                    throw new AlreadyExistsException($"timeline {k} exists with start LSN {existingStart}, not {start}");
                return existing; // creating twice with the same start is harmless
            }
            var identity = new TimelineIdentity(request.Timeline.TenantId.ToLowerInvariant(), request.Timeline.TimelineId.ToLowerInvariant(), request.PgVersion, request.SystemId, segmentSize);
            var dir = Path.Combine(_dataDir, identity.TenantId, identity.TimelineId);
            var temp = dir + ".creating";
            if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
            Directory.CreateDirectory(temp);
            var state = AcceptorState.New(start);
            ControlFile.Save(temp, identity, state);
            Directory.Move(temp, dir);
            FileSync.SyncDirectory(Path.GetDirectoryName(dir)!);
            var timeline = new Timeline(dir, identity, state, start, _node, _loggers.CreateLogger("Storage.Safekeeper.Timeline"), _metrics);
            _timelines[k] = timeline;
            _log.LogInformation("created timeline {TenantId}/{TimelineId} starting at {StartLsn}", identity.TenantId, identity.TimelineId, start);
            return timeline;
        }
        finally { _createLock.Release(); }
    }

    private static string KeyOf(TimelineKey? key)
    {
        if (key is null) throw new InvalidRequestException("the timeline (tenant_id, timeline_id) is missing");
        try
        {
            return $"{TimelineIds.Normalize(key.TenantId, "tenant_id")}/{TimelineIds.Normalize(key.TimelineId, "timeline_id")}";
        }
        catch (ArgumentException e) { throw new InvalidRequestException(e.Message); }
    }

    private void CollectMetrics()
    {
        foreach (var t in _timelines.Values)
        {
            var (term, flush, commit, _) = t.Positions();
            _metrics.Timeline(t.Identity.TenantId, t.Identity.TimelineId, term, flush.Value, commit.Value, t.BackupLsn.Value, t.RemoteConsistentLsn.Value, t.LocalStartLsn.Value);
        }
        _metrics.BrokenTimelines(_broken.Count);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var t in _timelines.Values) await t.DisposeAsync();
        _timelines.Clear();
    }
}
