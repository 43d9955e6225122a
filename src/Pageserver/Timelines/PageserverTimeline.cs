using Microsoft.Extensions.Logging;
using Storage.Core;
using Storage.Core.Postgres;
using Storage.Core.Processes;
using Storage.Pageserver.Images;
using Storage.Pageserver.Remote;
using Storage.Pageserver.Wal;

namespace Storage.Pageserver.Timelines;

/// <summary>
/// One timeline on the pageserver: ingest (receiver -> decoder -> segment layers + index), the
/// replay instance and its images, uploads to object storage, retention, and the basebackups
/// computes start from. Ingest runs on the receiver's task; everything else in one housekeeping
/// job, so at most one upload, image or retention pass runs at a time.
/// </summary>
internal sealed partial class PageserverTimeline : IWalSink, IAsyncDisposable
{
    private readonly object _lock = new();
    private readonly PageserverOptions _options;
    private readonly PostgresBinaries _binaries;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly PageserverMetrics _metrics;
    private readonly RemoteTimeline? _remote;
    private readonly SortedDictionary<ulong, SegmentIndex> _indexes = [];
    // Segments the ingestor finished whose layer, index and resume point are not durable yet (a
    // full disk): made durable, in order, before any more WAL is taken.
    private readonly List<FinishedSegment> _unpersisted = [];
    private readonly DiskFullEpisode _ingestDiskFull, _housekeepingDiskFull;
    private TimelineMetadata _metadata;
    private WalIngestor _ingestor;
    private WalReceiver? _receiver;
    private ReplayInstance? _replay;
    private TimelineJob? _housekeeping;
    private TaskCompletionSource _ingested = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private bool _remoteDirty = true;
    private DateTimeOffset _lastImageAttempt = DateTimeOffset.MinValue;
    private Lsn _reportedRemoteConsistent;
    private DateTimeOffset _lastReport = DateTimeOffset.MinValue;

    public PageserverTimeline(TimelinePaths paths, TimelineMetadata metadata, PageserverOptions options, PostgresBinaries binaries, RemoteTimeline? remote,
        ILogger logger, PageserverMetrics metrics, TimeProvider time)
    {
        Paths = paths;
        _metadata = metadata;
        _options = options;
        _binaries = binaries;
        _time = time;
        _remote = remote;
        _logger = logger;
        _metrics = metrics;
        _ingestDiskFull = new DiskFullEpisode("ingest", metadata.TenantId, metadata.TimelineId, logger, metrics);
        _housekeepingDiskFull = new DiskFullEpisode("housekeeping", metadata.TenantId, metadata.TimelineId, logger, metrics);
        Wal = new WalSegmentStore(paths.Wal, WalGeometry.Default);
        Images = new ImageCatalog(paths.Images);
        foreach (var file in Directory.EnumerateFiles(paths.Wal, "*.index"))
        {
            var index = SegmentIndex.Load(file);
            _indexes[index.Segment] = index;
        }
        _ingestor = new WalIngestor(Wal, metadata.WalFetch, metadata.DecodeFrom, metadata.DecodePrev);
    }

    public TimelinePaths Paths { get; }
    public WalSegmentStore Wal { get; }
    public ImageCatalog Images { get; }
    public string TenantId => _metadata.TenantId;
    public string TimelineId => _metadata.TimelineId;
    public TimelineMetadata Metadata { get { lock (_lock) return _metadata; } }
    public Lsn IngestedLsn { get { lock (_lock) return _ingestor.IngestedLsn; } }
    public Lsn SafekeeperCommitLsn { get; private set; }
    public Lsn NextByte { get { lock (_lock) return _ingestor.NextByte; } }
    public string? WalSource => _receiver?.Source?.ToString();
    public ReplayInstance? Replay => _replay;

    /// <summary>The oldest LSN a basebackup can be made at (the oldest image's end).</summary>
    public Lsn OldestBasebackupLsn => Images.All.FirstOrDefault()?.End ?? Lsn.Max;

    /// <summary>Starts the WAL receiver (when there are safekeepers) and the housekeeping job.</summary>
    public void Start()
    {
        if (_options.Safekeepers.Count > 0)
        {
            _receiver = new WalReceiver(TenantId, TimelineId, _options.Safekeepers, this, _logger, _time, _options.StallTimeout);
            _ = _receiver.StartAsync(CancellationToken.None);
        }
        _housekeeping = new TimelineJob(HousekeepingAsync, HousekeepingFailed, _options.HousekeepingInterval, _time);
        _ = _housekeeping.StartAsync(CancellationToken.None);
    }

    // ---- ingest ---------------------------------------------------------------------------

    public void Receive(Lsn start, ReadOnlySpan<byte> bytes, Lsn commitLsn, string source)
    {
        TaskCompletionSource? wake = null;
        try
        {
            lock (_lock)
            {
                if (commitLsn > SafekeeperCommitLsn) SafekeeperCommitLsn = commitLsn;
                PersistFinishedSegments();
                var before = _ingestor.IngestedLsn;
                IReadOnlyList<FinishedSegment> finished;
                CorruptWalException? corrupt = null;
                try { finished = _ingestor.Ingest(start, bytes); } // a failed write is rewound: nothing of it kept
                catch (CorruptWalException e) { (finished, corrupt) = (e.Finished, e); } // the records before the bad one are kept
                _metrics.Ingested(TenantId, TimelineId, bytes.Length, _ingestor.IngestedLsn);
                foreach (var segment in finished)
                {
                    _indexes[segment.Index.Segment] = segment.Index;
                    _unpersisted.Add(segment);
                }
                if (_ingestor.IngestedLsn != before)
                {
                    wake = _ingested;
                    _ingested = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                }
                PersistFinishedSegments();
                if (corrupt != null)
                {
                    _metrics.CorruptWal(TenantId, TimelineId, source);
                    throw corrupt;
                }
            }
            if (wake != null) _ingestDiskFull.Succeeded(IngestedLsn); // bytes were written: there is space
        }
        catch (Exception e) when (Core.Storage.DiskFull.Is(e))
        {
            _ingestDiskFull.Failed(IngestedLsn, e);
            throw new WalSinkPausedException($"disk full at {IngestedLsn}: {e.Message}", e);
        }
        finally { wake?.TrySetResult(); }
    }

    /// <summary>Makes the segments the ingestor finished durable, oldest first; one that fails stays queued for the next call.</summary>
    private void PersistFinishedSegments()
    {
        while (_unpersisted.Count > 0)
        {
            FinishSegment(_unpersisted[0]);
            _unpersisted.RemoveAt(0);
        }
    }

    /// <summary>
    /// A segment's records are all ingested: its bytes and index become durable, then the resume
    /// point moves after it. Repeatable: a step that fails (a full disk) is done again.
    /// </summary>
    private void FinishSegment(FinishedSegment finished)
    {
        var index = finished.Index;
        var fetch = Wal.Geometry.SegmentStartOf(finished.ResumeFrom);
        for (var s = Wal.Geometry.SegmentNumber(_metadata.WalFetch); s < Wal.Geometry.SegmentNumber(fetch); s++) Wal.Sync(s);
        index.Save(Path.Combine(Wal.Directory, SegmentIndex.FileName(Wal.FileName(index.Segment))));
        var next = _metadata with { WalFetchLsn = fetch.Value, DecodeFromLsn = finished.ResumeFrom.Value, DecodePrevLsn = finished.ResumePrev.Value };
        next.Save(Paths.Metadata);
        _metadata = next;
        _remoteDirty = true;
        _logger.LogDebug("segment {Segment} of {TenantId}/{TimelineId} finished: {Records} records, {Commits} commits; resume at {Lsn}",
            index.Segment, TenantId, TimelineId, index.RecordCount, index.Commits.Count, finished.ResumeFrom);
    }

    /// <summary>Waits until WAL up to <paramref name="lsn"/> is ingested; false on timeout.</summary>
    public async Task<bool> WaitForIngestAsync(Lsn lsn, TimeSpan timeout, CancellationToken ct)
    {
        using var timer = new CancellationTokenSource(timeout, _time);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct, timer.Token);
        while (true)
        {
            Task next;
            lock (_lock)
            {
                if (_ingestor.IngestedLsn >= lsn) return true;
                next = _ingested.Task;
            }
            try { await next.WaitAsync(deadline.Token); }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested) { return false; }
        }
    }

    // ---- the index ------------------------------------------------------------------------

    /// <summary>Every commit ingested, oldest first.</summary>
    public IReadOnlyList<CommitPoint> Commits()
    {
        lock (_lock) return _indexes.Values.SelectMany(i => i.Commits).Concat(_ingestor.Current.Commits).ToList();
    }

    /// <summary>The end of the last commit at or before <paramref name="time"/>, or null if none is that old.</summary>
    public CommitPoint? LastCommitAtOrBefore(DateTimeOffset time)
    {
        CommitPoint? found = null;
        foreach (var commit in Commits())
        {
            if (commit.Time > time) break;
            found = commit;
        }
        return found;
    }

    /// <summary>
    /// Whether <paramref name="lsn"/> is a record boundary of the ingested WAL (a record starts there,
    /// or it is the end of the last one), and the start of the record before it. From the index.
    /// </summary>
    public (bool IsBoundary, Lsn PreviousRecord) RecordBoundary(Lsn lsn)
    {
        lock (_lock)
        {
            if (lsn == _ingestor.IngestedLsn) return (true, _ingestor.PrevRecordLsn);
            var geometry = Wal.Geometry;
            var segments = _indexes.Values.Append(_ingestor.Current).Where(i => i.Segment <= geometry.SegmentNumber(lsn)).OrderByDescending(i => i.Segment).ToList();
            bool isStart = segments.FirstOrDefault(i => i.Segment == geometry.SegmentNumber(lsn))?.IsRecordStart(lsn, geometry) == true;
            foreach (var index in segments)
            {
                var before = index.RecordStarts.Select(o => geometry.SegmentStart(index.Segment) + o).Where(start => start < lsn).ToList();
                if (before.Count > 0) return (isStart, before[^1]);
            }
            return (isStart, Lsn.Zero);
        }
    }

    private IReadOnlyList<CheckpointPoint> Checkpoints()
    {
        lock (_lock) return _indexes.Values.SelectMany(i => i.Checkpoints).Concat(_ingestor.Current.Checkpoints).ToList();
    }

    // ---- housekeeping: replay, images, uploads, retention ------------------------------------

    /// <summary>One housekeeping round.</summary>
    private async Task HousekeepingAsync(CancellationToken ct)
    {
        if (_options.Replay) await KeepReplayRunningAsync(ct);
        if (_options.Replay) await MaybeTakeImageAsync(ct);
        await UploadAsync(ct);
        await ReportToSafekeepersAsync(ct);
        await ApplyRetentionAsync(ct);
    }

    private void HousekeepingFailed(Exception e)
    {
        if (Core.Storage.DiskFull.Is(e)) _housekeepingDiskFull.Failed(IngestedLsn, e);
        else _logger.LogWarning("housekeeping of {TenantId}/{TimelineId} failed, will retry: {Error}", TenantId, TimelineId, e.Message);
    }

    private async Task KeepReplayRunningAsync(CancellationToken ct)
    {
        if (_replay is { IsRunning: true }) { _replay.RefreshFeed(); return; }
        if (_replay != null)
        {
            _logger.LogWarning("replay instance of {TenantId}/{TimelineId} exited; rebuilding it from the newest image. Log:\n{Log}", TenantId, TimelineId, _replay.ReadLogTail());
            await _replay.DisposeAsync();
            _replay.Reset();
        }
        var latest = Images.Latest ?? throw new InvalidOperationException("the timeline has no image");
        var directory = OsUser.ReachableDirectory(Paths.Replay, "replay-" + TimelineId[..8]);
        _replay = new ReplayInstance(_binaries, directory, Wal.Directory, _logger);
        try
        {
            await _replay.StartAsync(() => Images.OpenVerifiedAsync(latest, ct), ServiceProcess.FreePort(), ct);
            _housekeepingDiskFull.Succeeded(IngestedLsn);
        }
        catch
        {
            _replay.Reset(); // start over from an image next time
            throw;
        }
    }

    /// <summary>
    /// An image is taken when enough WAL has come since the last image's redo point (what a
    /// basebackup from it must carry and PostgreSQL must replay) or enough time since it was taken,
    /// and the WAL holds a checkpoint newer than that redo point (a standby's backup starts at its
    /// last restartpoint, so without a new checkpoint a new image would need the same WAL as the old).
    /// </summary>
    private async Task MaybeTakeImageAsync(CancellationToken ct)
    {
        if (_replay is not { IsRunning: true } replay) return;
        var latest = Images.Latest!;
        var ingested = IngestedLsn;
        if (ingested <= latest.End) return;
        var now = _time.GetUtcNow();
        bool due = ingested - latest.Redo >= _options.ImageAfterBytes || now.UtcDateTime - latest.CreatedUtc >= _options.ImageAfter;
        if (!due || now - _lastImageAttempt < TimeSpan.FromSeconds(5)) return;
        var checkpoint = Checkpoints().LastOrDefault(c => c.Redo > latest.Redo);
        if (checkpoint == default) return;
        if (await replay.ReplayedLsnAsync(ct) <= checkpoint.Lsn) return;
        _lastImageAttempt = now;
        await TakeImageAsync(replay, ct);
    }

    public async Task<ImageLayer> TakeImageAsync(ReplayInstance replay, CancellationToken ct)
    {
        var scratch = Path.Combine(replay.Directory, "backup");
        if (Directory.Exists(scratch)) Directory.Delete(scratch, recursive: true);
        Directory.CreateDirectory(scratch);
        await OsUser.GiveToPostgresAsync(scratch, ct);
        try
        {
            await replay.BaseBackupAsync(Path.Combine(scratch, "out"), ct);
            var (start, end) = BackupManifest.WalRange(Path.Combine(scratch, "out", "backup_manifest"));
            await using var tar = new FileStream(Path.Combine(scratch, "out", "base.tar"), FileMode.Open, FileAccess.Read);
            var image = await Images.AddAsync(start, end, ImageKind.Backup, _metadata.Generation, output => ImageFilter.CopyAsync(tar, output, ct), ct);
            _remoteDirty = true;
            _housekeepingDiskFull.Succeeded(image.End);
            _metrics.ImageTaken(TenantId, TimelineId, image);
            _logger.LogInformation("image of {TenantId}/{TimelineId} taken: redo {Redo}, consistent at {Lsn}, {Bytes} bytes",
                TenantId, TimelineId, image.Redo, image.End, image.TarBytes);
            return image;
        }
        finally { Directory.Delete(scratch, recursive: true); }
    }

    /// <summary>A new timeline's first upload, before <see cref="Start"/> (no housekeeping runs yet to race with it).</summary>
    public Task PublishBeforeStartAsync(CancellationToken ct) =>
        _housekeeping is null ? UploadAsync(ct) : throw new InvalidOperationException("the timeline's housekeeping already uploads");

    /// <summary>
    /// Uploads finished segments (and their indexes) and new images, then publishes the manifest;
    /// remote_consistent_lsn moves to where the finished segments end.
    /// </summary>
    private async Task UploadAsync(CancellationToken ct)
    {
        if (_remote is null || !_remoteDirty) return;
        _remoteDirty = false;
        try
        {
            var metadata = Metadata;
            var complete = Wal.Geometry.SegmentNumber(metadata.WalFetch); // segments below are finished
            foreach (var segment in Wal.Segments())
            {
                var name = Wal.FileName(segment);
                if (segment < complete)
                {
                    if (_remote.Has(name)) continue;
                    var indexPath = Path.Combine(Wal.Directory, SegmentIndex.FileName(name));
                    if (File.Exists(indexPath)) await _remote.UploadAsync(SegmentIndex.FileName(name), indexPath, ct);
                    await _remote.UploadAsync(name, Wal.PathOf(segment), ct);
                }
                else if (segment == Wal.Geometry.SegmentNumber(metadata.Start) && !_remote.Has(name, sealedOnly: false))
                {
                    // The first, partial segment holds initdb's (or the ancestor's) WAL the first image
                    // needs; it goes up as it is now, and again once finished.
                    await _remote.UploadAsync(name, Wal.PathOf(segment), ct, sealedLayer: false);
                }
            }
            var images = Images.All;
            foreach (var image in images)
                if (!_remote.Has(image.FileName)) await _remote.UploadAsync(image.FileName, Images.PathOf(image), ct);
            var remoteConsistent = metadata.WalFetch > metadata.Start ? metadata.WalFetch : metadata.Start;
            var published = metadata with { RemoteConsistentLsn = remoteConsistent.Value };
            await _remote.PublishAsync(published, images, ct);
            bool saved = false;
            lock (_lock)
            {
                if (remoteConsistent > _metadata.RemoteConsistent)
                {
                    var next = _metadata with { RemoteConsistentLsn = remoteConsistent.Value };
                    next.Save(Paths.Metadata); // on disk before it is reported to anyone
                    _metadata = next;
                    saved = true;
                }
            }
            if (saved) _housekeepingDiskFull.Succeeded(remoteConsistent); // a local write worked: there is space
            _metrics.RemoteConsistent(TenantId, TimelineId, remoteConsistent);
        }
        catch
        {
            _remoteDirty = true;
            throw;
        }
    }

    /// <summary>
    /// Tells every safekeeper how far object storage holds the timeline, so they may delete WAL
    /// below it (with their backup and commit LSNs). Sent when it moves, and every 10 s for
    /// safekeepers that were down. Without object storage nothing is sent: nothing may be trimmed.
    /// </summary>
    private async Task ReportToSafekeepersAsync(CancellationToken ct)
    {
        if (_remote is null) return;
        var remoteConsistent = Metadata.RemoteConsistent;
        if (remoteConsistent == _reportedRemoteConsistent && _time.GetUtcNow() - _lastReport < TimeSpan.FromSeconds(10)) return;
        // A pageserver failed away from must not let safekeepers trim WAL the new attached one still reads.
        if (remoteConsistent != _reportedRemoteConsistent) await _remote.EnsureCurrentAsync(ct);
        var key = Core.Api.SafekeeperClient.Key(TenantId, TimelineId);
        var reports = _options.Safekeepers.Select(async safekeeper =>
        {
            try { await Core.Api.SafekeeperClient.ReportPageserverFeedbackAsync(safekeeper, key, _options.Id, remoteConsistent, IngestedLsn, TimeSpan.FromSeconds(2), ct); return true; }
            catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                _logger.LogDebug("feedback to {Safekeeper} for {TenantId}/{TimelineId} failed: {Error}", safekeeper, TenantId, TimelineId, e.Message);
                return false;
            }
        });
        await Task.WhenAll(reports);
        _reportedRemoteConsistent = remoteConsistent;
        _lastReport = _time.GetUtcNow();
    }

    /// <summary>Stops ingest and housekeeping (a round in progress ends first), then the replay instance.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_receiver != null) await _receiver.StopAsync();
        if (_housekeeping != null) await _housekeeping.StopAsync();
        if (_replay != null) await _replay.DisposeAsync();
        Wal.Dispose();
    }
}
