using System.Collections.Concurrent;
using Polly;
using Polly.Retry;
using Microsoft.Extensions.Logging;
using Storage.Core;
using Storage.Core.Api;
using Storage.Core.Errors;
using Storage.Core.Postgres;
using Storage.Core.Processes;
using Storage.Core.Wal;
using Storage.ObjectStore;
using Storage.Pageserver.Images;
using Storage.Pageserver.Remote;
using Storage.Pageserver.Wal;
using Storage.Proto.Pageserver;

namespace Storage.Pageserver.Timelines;

/// <summary>
/// The pageserver's timelines: loads those on disk, attaches those only object storage has
/// (an empty disk), creates new ones with initdb, and branches. Each timeline runs its own loops
/// (WAL receiver, housekeeping, or a secondary's refresh); disposing the manager stops them all.
/// </summary>
internal sealed class TimelineManager(PageserverOptions options, PostgresBinaries binaries, IObjectStore? remoteStore, ILoggerFactory loggers,
    PageserverMetrics metrics, TimeProvider time) : IAsyncDisposable
{
    private readonly ConcurrentDictionary<(string, string), PageserverTimeline> _timelines = new();
    private readonly ConcurrentDictionary<(string, string), SecondaryTimeline> _secondaries = new();
    // One creation, branch or location change at a time: each moves a timeline between states.
    private readonly SemaphoreSlim _createLock = new(1, 1);
    private readonly ILogger _logger = loggers.CreateLogger("Storage.Pageserver");

    public IReadOnlyCollection<PageserverTimeline> All => _timelines.Values.ToList();
    public IReadOnlyCollection<SecondaryTimeline> Secondaries => _secondaries.Values.ToList();

    public PageserverTimeline Get(string tenantId, string timelineId)
    {
        TimelineIds.EnsureValid(tenantId, timelineId);
        if (_timelines.TryGetValue((tenantId, timelineId), out var timeline)) return timeline;
        throw _secondaries.ContainsKey((tenantId, timelineId))
            ? new PreconditionFailedException($"timeline {tenantId}/{timelineId} is only a secondary on pageserver {options.Id}: ask the attached pageserver")
            : new NotFoundException($"timeline {tenantId}/{timelineId} is not on pageserver {options.Id}");
    }

    /// <summary>
    /// With a storage controller: registers and takes the timelines it places here. Without one:
    /// starts every timeline on disk, then attaches those only object storage has.
    /// </summary>
    public async Task LoadAsync(CancellationToken ct)
    {
        if (options.Controller is { } controller)
        {
            await LoadPlacedAsync(controller, ct);
            return;
        }
        foreach (var metadata in LocalTimelines())
        {
            var index = remoteStore is null ? null : await RemoteTimeline.LatestIndexAsync(remoteStore, metadata.TenantId, metadata.TimelineId, ct);
            LoadFromDisk(metadata, index, Math.Max(metadata.Generation, index?.Generation ?? 0) + 1);
        }
        if (remoteStore is null) return;
        foreach (var (tenant, timeline) in await RemoteTimeline.ListTimelinesAsync(remoteStore, ct))
            if (!_timelines.ContainsKey((tenant, timeline)))
            {
                var index = await RemoteTimeline.LatestIndexAsync(remoteStore, tenant, timeline, ct);
                if (index != null) await AttachFromRemoteAsync(index, index.Generation + 1, ct);
            }
    }

    /// <summary>The attached timelines on disk (a secondary's mirror has no metadata file).</summary>
    private IEnumerable<TimelineMetadata> LocalTimelines()
    {
        var tenants = Path.Combine(options.DataDirectory, "tenants");
        if (!Directory.Exists(tenants)) return [];
        return Directory.EnumerateFiles(tenants, "timeline.meta", SearchOption.AllDirectories).Select(TimelineMetadata.Load).ToList();
    }

    /// <summary>Registers with the storage controller (retrying until it answers) and takes its placements.</summary>
    private async Task LoadPlacedAsync(Uri controller, CancellationToken ct)
    {
        var address = options.AdvertisedAddress;
        var retry = new ResiliencePipelineBuilder { TimeProvider = time }.AddRetry(new RetryStrategyOptions
        {
            MaxRetryAttempts = int.MaxValue, Delay = TimeSpan.FromMilliseconds(100), MaxDelay = TimeSpan.FromSeconds(2), BackoffType = DelayBackoffType.Exponential,
            OnRetry = args => { _logger.LogWarning("storage controller {Controller} does not answer, retrying: {Error}", controller, args.Outcome.Exception?.Message); return default; },
        }).Build();
        var onDisk = LocalTimelines().Select(m => new Proto.Controller.Location
        {
            Timeline = PageserverClient.Id(m.TenantId, m.TimelineId), Mode = LocationMode.Attached, Generation = m.Generation,
        }).ToList();
        var placed = await retry.ExecuteAsync(async token => await ControllerClient.RegisterPageserverAsync(controller, options.Id, address, onDisk, token), ct);
        foreach (var location in placed.Locations)
        {
            var (tenant, timeline) = (location.Timeline.TenantId, location.Timeline.TimelineId);
            if (location.Mode == LocationMode.Attached) await ActivateAsync(tenant, timeline, location.Generation, ct);
            else if (location.Mode == LocationMode.Secondary) StartSecondary(tenant, timeline);
        }
        _logger.LogInformation("registered with storage controller {Controller} as {NodeId}: {Attached} attached, {Secondary} secondary timelines",
            controller, options.Id, _timelines.Count, _secondaries.Count);
    }

    /// <summary>
    /// The storage controller moves a timeline here or away: attached under <paramref name="generation"/>
    /// (a secondary is promoted), secondary (an attached one is demoted and its data dropped), or detached.
    /// </summary>
    public async Task<object> SetLocationAsync(string tenantId, string timelineId, LocationMode mode, ulong generation, CancellationToken ct)
    {
        TimelineIds.EnsureValid(tenantId, timelineId);
        if (mode == LocationMode.Attached && generation == 0) throw new InvalidRequestException("an attach needs the generation the storage controller issued");
        await _createLock.WaitAsync(ct);
        try
        {
            var key = (tenantId, timelineId);
            _timelines.TryGetValue(key, out var attached);
            _secondaries.TryGetValue(key, out var secondary);
            switch (mode)
            {
                case LocationMode.Attached:
                    if (attached?.Metadata.Generation == generation) return attached;
                    if (attached != null) await StopAttachedAsync(attached);
                    if (secondary != null) await StopSecondaryAsync(secondary);
                    return await ActivateAsync(tenantId, timelineId, generation, ct);
                case LocationMode.Secondary:
                    if (secondary != null) return secondary;
                    if (attached != null)
                    {
                        await StopAttachedAsync(attached);
                        _logger.LogWarning("timeline {TenantId}/{TimelineId} demoted to secondary (generation {Generation} is stale)", tenantId, timelineId, attached.Metadata.Generation);
                    }
                    return StartSecondary(tenantId, timelineId);
                case LocationMode.Detached:
                    if (attached != null) await StopAttachedAsync(attached);
                    if (secondary != null) await StopSecondaryAsync(secondary);
                    Wipe(TimelinePaths.For(options.DataDirectory, tenantId, timelineId));
                    return new object();
                default:
                    throw new InvalidRequestException($"unknown location mode {mode}");
            }
        }
        finally { _createLock.Release(); }
    }

    private async Task StopAttachedAsync(PageserverTimeline timeline)
    {
        _timelines.TryRemove((timeline.TenantId, timeline.TimelineId), out _);
        await timeline.DisposeAsync();
    }

    private async Task StopSecondaryAsync(SecondaryTimeline secondary)
    {
        _secondaries.TryRemove((secondary.TenantId, secondary.TimelineId), out _);
        await secondary.DisposeAsync();
    }

    private SecondaryTimeline StartSecondary(string tenantId, string timelineId)
    {
        if (remoteStore is null) throw new PreconditionFailedException("a secondary needs object storage to download from");
        var paths = TimelinePaths.For(options.DataDirectory, tenantId, timelineId);
        if (File.Exists(paths.Metadata) || !LayerMirror.ExistsIn(paths)) Wipe(paths); // an attached timeline's data, not a mirror
        Directory.CreateDirectory(paths.Root);
        var secondary = new SecondaryTimeline(paths, new RemoteTimeline(remoteStore, tenantId, timelineId, generation: 0), tenantId, timelineId, options.SecondaryRefresh, _logger, time);
        _secondaries[(tenantId, timelineId)] = secondary;
        secondary.Start();
        _logger.LogInformation("timeline {TenantId}/{TimelineId} is secondary here: its layers are kept downloaded", tenantId, timelineId);
        return secondary;
    }

    /// <summary>
    /// Attaches under <paramref name="generation"/>: from the local disk when it holds the timeline at
    /// least as far as the newest manifest, otherwise from object storage (a secondary's mirror
    /// makes that a download of the newest layers only).
    /// </summary>
    private async Task<PageserverTimeline> ActivateAsync(string tenantId, string timelineId, ulong generation, CancellationToken ct)
    {
        var paths = TimelinePaths.For(options.DataDirectory, tenantId, timelineId);
        var index = remoteStore is null ? null : await RemoteTimeline.LatestIndexAsync(remoteStore, tenantId, timelineId, ct);
        if (File.Exists(paths.Metadata) && !LayerMirror.ExistsIn(paths))
        {
            var metadata = TimelineMetadata.Load(paths.Metadata);
            if (index is null || metadata.WalFetch >= index.Metadata.RemoteConsistent)
                return LoadFromDisk(metadata, index, generation);
        }
        return await AttachFromRemoteAsync(index ?? throw new NotFoundException(
            $"timeline {tenantId}/{timelineId} is neither on this pageserver's disk nor in object storage"), generation, ct);
    }

    private PageserverTimeline LoadFromDisk(TimelineMetadata metadata, IndexPart? index, ulong generation)
    {
        var remote = NewRemote(metadata.TenantId, metadata.TimelineId, generation);
        if (index != null) remote?.Adopt(index.Layers);
        metadata = metadata with { Generation = generation };
        var paths = TimelinePaths.For(options.DataDirectory, metadata.TenantId, metadata.TimelineId);
        metadata.Save(paths.Metadata);
        var timeline = Add(paths, metadata, remote);
        _logger.LogInformation("timeline {TenantId}/{TimelineId} loaded from disk, generation {Generation}, ingest resumes at {Lsn}",
            metadata.TenantId, metadata.TimelineId, metadata.Generation, metadata.DecodeFrom);
        return timeline;
    }

    /// <summary>Object storage of the timeline under <paramref name="generation"/>; deletions checked with the controller, if there is one.</summary>
    private RemoteTimeline? NewRemote(string tenantId, string timelineId, ulong generation)
    {
        if (remoteStore is null) return null;
        Func<CancellationToken, Task<bool>>? isCurrent = options.Controller is { } controller
            ? ct => ControllerClient.ValidateGenerationAsync(controller, options.Id, tenantId, timelineId, generation, ct)
            : null;
        return new RemoteTimeline(remoteStore, tenantId, timelineId, generation, isCurrent);
    }

    /// <summary>
    /// Rebuilds a timeline from its newest manifest: its WAL layers, indexes and images are
    /// downloaded (those a secondary already has are kept), and ingest resumes from the manifest's
    /// resume point, re-reading the tail from the safekeepers (they keep WAL above remote_consistent_lsn).
    /// </summary>
    private async Task<PageserverTimeline> AttachFromRemoteAsync(IndexPart index, ulong generation, CancellationToken ct)
    {
        var (tenantId, timelineId) = (index.Metadata.TenantId, index.Metadata.TimelineId);
        var paths = TimelinePaths.For(options.DataDirectory, tenantId, timelineId);
        if (!LayerMirror.ExistsIn(paths)) Wipe(paths); // an attach cut short, or data older than the manifest
        var remote = NewRemote(tenantId, timelineId, generation)!;
        remote.Adopt(index.Layers);
        var mirror = new LayerMirror(paths, remote);
        var downloaded = await mirror.SyncAsync(index, ct);
        var metadata = index.Metadata with { Generation = generation };
        metadata.Save(paths.Metadata); // the timeline is real from here; a crash before redoes the sync
        mirror.Seal();
        var timeline = Add(paths, metadata, remote);
        _logger.LogInformation("timeline {TenantId}/{TimelineId} attached from object storage (manifest generation {Old}, now {Generation}): {Downloaded} of {Layers} layers downloaded, remote consistent at {Lsn}",
            tenantId, timelineId, index.Generation, generation, downloaded, index.Layers.Count, metadata.RemoteConsistent);
        return timeline;
    }

    private static void Wipe(TimelinePaths paths)
    {
        if (Directory.Exists(paths.Root)) Directory.Delete(paths.Root, recursive: true);
    }

    private PageserverTimeline Add(TimelinePaths paths, TimelineMetadata metadata, RemoteTimeline? remote) =>
        Register(new PageserverTimeline(paths, metadata, options, binaries, remote, _logger, metrics, time));

    /// <summary>Makes <paramref name="timeline"/> served here and starts its ingest and housekeeping.</summary>
    private PageserverTimeline Register(PageserverTimeline timeline)
    {
        var metadata = timeline.Metadata;
        if (!_timelines.TryAdd((metadata.TenantId, metadata.TimelineId), timeline))
            throw new AlreadyExistsException($"timeline {metadata.TenantId}/{metadata.TimelineId} exists");
        timeline.Start();
        return timeline;
    }

    /// <summary>Creates a timeline with initdb: its first image, and its WAL starting after initdb's.</summary>
    public async Task<PageserverTimeline> CreateAsync(string tenantId, string timelineId, IReadOnlyList<Uri> safekeepers, ulong generation, CancellationToken ct)
    {
        await _createLock.WaitAsync(ct);
        try
        {
            var paths = PrepareNew(tenantId, timelineId);
            var scratch = Directory.CreateTempSubdirectory("initdb-").FullName;
            try
            {
                var data = Path.Combine(scratch, "data");
                await OsUser.GiveToPostgresAsync(scratch, ct);
                var initdb = OsUser.StartInfoAsPostgres(binaries.InitDb,
                    ["-D", data, "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync"]);
                (await ProcessRunner.RunAsync(initdb, TimeSpan.FromMinutes(2), ct)).ThrowIfFailed("initdb");
                var control = PgControlFile.ReadFromDataDirectory(data);
                if (control.State != DatabaseState.ShutDown)
                    throw new InvalidOperationException($"initdb left the cluster in state {control.State}, expected a clean shutdown");
                var segmentPath = Path.Combine(data, "pg_wal", WalGeometry.Default.SegmentFileName(1, WalGeometry.Default.SegmentNumber(control.Checkpoint)));
                var end = EndOfInitdbWal(segmentPath, control.Checkpoint);

                var images = new ImageCatalog(paths.Images);
                await images.AddDirectoryAsync(data, control.Redo, end, ImageKind.ShutDown, generation, ct);
                using (var wal = new WalSegmentStore(paths.Wal, WalGeometry.Default))
                {
                    // initdb's WAL before the timeline start: the first image replays from its checkpoint.
                    var start = wal.Geometry.SegmentStartOf(end);
                    var bytes = new byte[end - start];
                    using (var file = File.OpenHandle(segmentPath)) RandomAccess.Read(file, bytes, 0);
                    wal.Write(start, bytes);
                    wal.Sync(wal.Geometry.SegmentNumber(end));
                }
                var metadata = new TimelineMetadata
                {
                    TenantId = tenantId, TimelineId = timelineId, SystemIdentifier = control.SystemIdentifier,
                    StartLsn = end.Value, WalFetchLsn = end.Value, DecodeFromLsn = end.Value, DecodePrevLsn = control.Checkpoint.Value,
                    Generation = generation,
                };
                return await FinishCreateAsync(paths, metadata, safekeepers, ct);
            }
            finally
            {
                try { Directory.Delete(scratch, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            }
        }
        finally { _createLock.Release(); }
    }

    /// <summary>
    /// Branches <paramref name="timelineId"/> off <paramref name="ancestor"/> at <paramref name="at"/>
    /// (a record boundary): it gets the ancestor's image below that point and the ancestor's WAL
    /// from the image's redo point up to it, and continues with its own WAL from there.
    /// </summary>
    public async Task<PageserverTimeline> BranchAsync(PageserverTimeline ancestor, string timelineId, Lsn at, IReadOnlyList<Uri> safekeepers, ulong generation, CancellationToken ct)
    {
        await _createLock.WaitAsync(ct);
        try
        {
            if (!await ancestor.WaitForIngestAsync(at, options.BasebackupWait, ct))
                throw new OutOfRangeException($"branch point {at} is beyond the ancestor's ingested WAL ({ancestor.IngestedLsn})");
            var image = ancestor.Images.NewestAtOrBelow(at)
                ?? throw new OutOfRangeException($"branch point {at} is below the ancestor's retention horizon {ancestor.OldestBasebackupLsn}");
            var (isBoundary, prev) = ancestor.RecordBoundary(at);
            if (!isBoundary)
                throw new InvalidRequestException($"{at} is not a WAL record boundary of {ancestor.TenantId}/{ancestor.TimelineId} (branch at a commit, a timestamp, or the end of its WAL)");
            var paths = PrepareNew(ancestor.TenantId, timelineId);
            var images = new ImageCatalog(paths.Images);
            await images.AddAsync(image.Redo, image.End, image.Kind, generation, async output =>
            {
                await using var tar = await ancestor.Images.OpenVerifiedAsync(image, ct);
                await tar.CopyToAsync(output, ct);
            }, ct);
            using (var wal = new WalSegmentStore(paths.Wal, WalGeometry.Default))
            {
                var buffer = new byte[1 << 20];
                for (var position = wal.Geometry.SegmentStartOf(image.Redo); position < at;)
                {
                    int n = (int)Math.Min(buffer.Length, at - position);
                    ancestor.Wal.Read(position, buffer.AsSpan(0, n));
                    wal.Write(position, buffer.AsSpan(0, n));
                    position += (ulong)n;
                }
                foreach (var segment in wal.Segments()) wal.Sync(segment);
            }
            var parent = ancestor.Metadata;
            var metadata = new TimelineMetadata
            {
                TenantId = parent.TenantId, TimelineId = timelineId, SystemIdentifier = parent.SystemIdentifier,
                StartLsn = at.Value, WalFetchLsn = at.Value, DecodeFromLsn = at.Value, DecodePrevLsn = prev.Value,
                AncestorTimelineId = parent.TimelineId, AncestorLsn = at.Value, Generation = generation,
            };
            return await FinishCreateAsync(paths, metadata, safekeepers, ct);
        }
        finally { _createLock.Release(); }
    }

    private TimelinePaths PrepareNew(string tenantId, string timelineId)
    {
        TimelineIds.EnsureValid(tenantId, timelineId);
        if (_timelines.ContainsKey((tenantId, timelineId)) || _secondaries.ContainsKey((tenantId, timelineId)))
            throw new AlreadyExistsException($"timeline {tenantId}/{timelineId} exists");
        var paths = TimelinePaths.For(options.DataDirectory, tenantId, timelineId);
        Wipe(paths); // a creation cut short
        Directory.CreateDirectory(paths.Root);
        return paths;
    }

    /// <summary>
    /// The metadata makes the timeline real; its first layers and manifest go to object storage
    /// before it is added (as Neon's timeline creation waits for its index_part upload): a creation
    /// acknowledged is one a secondary can attach even if this pageserver dies at once. Then the
    /// safekeepers learn it.
    /// </summary>
    private async Task<PageserverTimeline> FinishCreateAsync(TimelinePaths paths, TimelineMetadata metadata, IReadOnlyList<Uri> safekeepers, CancellationToken ct)
    {
        metadata.Save(paths.Metadata);
        var remote = NewRemote(metadata.TenantId, metadata.TimelineId, metadata.Generation);
        var timeline = new PageserverTimeline(paths, metadata, options, binaries, remote, _logger, metrics, time);
        try { await timeline.PublishBeforeStartAsync(ct); }
        catch (Exception e)
        {
            await timeline.DisposeAsync();
            Wipe(paths); // not created: a retry starts over
            if (e is OperationCanceledException && ct.IsCancellationRequested) throw;
            throw new TemporarilyUnavailableException($"timeline {metadata.TenantId}/{metadata.TimelineId} could not be put in object storage: {e.Message}", e);
        }
        timeline = Register(timeline);
        var key = SafekeeperClient.Key(metadata.TenantId, metadata.TimelineId);
        foreach (var safekeeper in safekeepers)
        {
            // A rare admin step, but each safekeeper fsyncs a control file and directories: on a
            // loaded machine that can take seconds, more than a data-path RPC's default deadline.
            try { await SafekeeperClient.CreateTimelineAsync(safekeeper, key, metadata.Start, metadata.SystemIdentifier, TimeSpan.FromSeconds(30), ct); }
            catch (Grpc.Core.RpcException e)
            {
                throw new TemporarilyUnavailableException($"safekeeper {safekeeper} could not create timeline {metadata.TenantId}/{metadata.TimelineId}: {e.Status.Detail}", e);
            }
        }
        _logger.LogInformation("timeline {TenantId}/{TimelineId} created at {Lsn} (ancestor {Ancestor}), on {Count} safekeepers",
            metadata.TenantId, metadata.TimelineId, metadata.Start, metadata.AncestorTimelineId ?? "none", safekeepers.Count);
        return timeline;
    }

    /// <summary>The end of initdb's WAL: decode from its last checkpoint record onwards.</summary>
    private static Lsn EndOfInitdbWal(string segmentPath, Lsn checkpoint)
    {
        using var file = new FileStream(segmentPath, FileMode.Open, FileAccess.Read);
        file.Seek(WalGeometry.Default.SegmentOffset(checkpoint), SeekOrigin.Begin);
        var scan = WalEnd.Scan(file, checkpoint);
        if (scan.RecordCount == 0)
            throw new InvalidOperationException($"initdb's checkpoint record at {checkpoint} does not decode: {scan.Detail}");
        return scan.EndLsn;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var timeline in _timelines.Values) await timeline.DisposeAsync();
        foreach (var secondary in _secondaries.Values) await secondary.DisposeAsync();
        _timelines.Clear();
        _secondaries.Clear();
    }
}
