using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Storage.Core;
using Storage.Core.Api;
using Storage.Core.Grpc;
using Storage.Core.Postgres;
using Storage.Core.Wal;
using Storage.ObjectStore;
using Storage.Pageserver.Images;
using Storage.Pageserver.Remote;
using Storage.Pageserver.Wal;

namespace Storage.Pageserver.Timelines;

/// <summary>
/// The pageserver's timelines: loads those on disk, attaches those only object storage has
/// (an empty disk), creates new ones with initdb, and branches.
/// </summary>
internal sealed class TimelineManager(PageserverOptions options, IObjectStore? remoteStore, ILoggerFactory loggers, PageserverMetrics metrics) : IAsyncDisposable
{
    private readonly ConcurrentDictionary<(string, string), PageserverTimeline> _timelines = new();
    private readonly SemaphoreSlim _createLock = new(1, 1);
    private readonly ILogger _logger = loggers.CreateLogger("Storage.Pageserver");

    public IReadOnlyCollection<PageserverTimeline> All => _timelines.Values.ToList();

    public PageserverTimeline Get(string tenantId, string timelineId)
    {
        if (!TimelineIds.IsValid(tenantId) || !TimelineIds.IsValid(timelineId))
            throw new RpcException(GrpcStatusCode.InvalidArgument, $"'{tenantId}'/'{timelineId}' is not a tenant/timeline id (32 hex characters each)");
        return _timelines.TryGetValue((tenantId, timelineId), out var timeline)
            ? timeline
            : throw new RpcException(GrpcStatusCode.NotFound, $"timeline {tenantId}/{timelineId} is not on this pageserver");
    }

    /// <summary>Starts every timeline on disk, then attaches those only object storage has.</summary>
    public async Task LoadAsync(CancellationToken ct)
    {
        var tenants = Path.Combine(options.DataDirectory, "tenants");
        if (Directory.Exists(tenants))
            foreach (var meta in Directory.EnumerateFiles(tenants, "timeline.meta", SearchOption.AllDirectories))
            {
                var metadata = TimelineMetadata.Load(meta);
                var remote = await RemoteForAsync(metadata.TenantId, metadata.TimelineId, metadata.Generation, ct);
                metadata = metadata with { Generation = remote?.Generation ?? metadata.Generation + 1 };
                var paths = TimelinePaths.For(options.DataDirectory, metadata.TenantId, metadata.TimelineId);
                metadata.Save(paths.Metadata);
                Add(paths, metadata, remote);
                _logger.LogInformation("timeline {TenantId}/{TimelineId} loaded from disk, generation {Generation}, ingest resumes at {Lsn}",
                    metadata.TenantId, metadata.TimelineId, metadata.Generation, metadata.DecodeFrom);
            }
        if (remoteStore is null) return;
        foreach (var (tenant, timeline) in await RemoteTimeline.ListTimelinesAsync(remoteStore, ct))
            if (!_timelines.ContainsKey((tenant, timeline)))
                await AttachFromRemoteAsync(tenant, timeline, ct);
    }

    /// <summary>A remote handle with a generation above any written before, adopting the newest manifest's layers.</summary>
    private async Task<RemoteTimeline?> RemoteForAsync(string tenantId, string timelineId, ulong localGeneration, CancellationToken ct)
    {
        if (remoteStore is null) return null;
        var index = await RemoteTimeline.LatestIndexAsync(remoteStore, tenantId, timelineId, ct);
        var remote = new RemoteTimeline(remoteStore, tenantId, timelineId, Math.Max(localGeneration, index?.Generation ?? 0) + 1);
        if (index != null) remote.Adopt(index.Layers);
        return remote;
    }

    /// <summary>
    /// Rebuilds a timeline from its newest manifest: its WAL layers, indexes and images are
    /// downloaded, and ingest resumes from the manifest's resume point, re-reading the tail from
    /// the safekeepers (they keep WAL above remote_consistent_lsn).
    /// </summary>
    private async Task AttachFromRemoteAsync(string tenantId, string timelineId, CancellationToken ct)
    {
        var index = await RemoteTimeline.LatestIndexAsync(remoteStore!, tenantId, timelineId, ct)
            ?? throw new InvalidOperationException($"timeline {tenantId}/{timelineId} has no manifest");
        var paths = TimelinePaths.For(options.DataDirectory, tenantId, timelineId);
        if (Directory.Exists(paths.Root)) Directory.Delete(paths.Root, recursive: true); // an attach cut short
        var remote = new RemoteTimeline(remoteStore!, tenantId, timelineId, index.Generation + 1);
        remote.Adopt(index.Layers);
        using (var wal = new WalSegmentStore(paths.Wal, WalGeometry.Default))
        {
            foreach (var layer in index.Layers)
            {
                if (wal.Geometry.TryParseSegmentFileName(layer.Name, out _, out var segment))
                    await remote.DownloadAsync(layer, content => wal.InstallAsync(segment, content, ct), ct);
                else if (layer.Name.EndsWith(".index", StringComparison.Ordinal))
                    await remote.DownloadAsync(layer, content => SaveAsync(content, Path.Combine(paths.Wal, layer.Name), ct), ct);
            }
        }
        var images = new ImageCatalog(paths.Images);
        foreach (var image in index.Images)
        {
            var layer = index.Layers.FirstOrDefault(l => l.Name == image.FileName)
                ?? throw new ObjectCorruptException(image.FileName, "the manifest lists an image without its layer");
            await remote.DownloadAsync(layer, content => SaveAsync(content, images.PathOf(image), ct), ct);
            images.Register(image);
        }
        var metadata = index.Metadata with { Generation = remote.Generation };
        metadata.Save(paths.Metadata); // last: a timeline directory without it is an attach to redo
        Add(paths, metadata, remote);
        _logger.LogInformation("timeline {TenantId}/{TimelineId} attached from object storage (manifest generation {Old}, now {Generation}): {Layers} layers, remote consistent at {Lsn}",
            tenantId, timelineId, index.Generation, remote.Generation, index.Layers.Count, metadata.RemoteConsistent);
    }

    private static async Task SaveAsync(Stream content, string path, CancellationToken ct)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        await using var file = new FileStream(path + ".download", FileMode.Create, FileAccess.Write);
        await content.CopyToAsync(file, ct);
        await file.FlushAsync(ct);
        Core.Storage.FileSync.DataSync(file.SafeFileHandle);
        file.Close();
        File.Move(path + ".download", path, overwrite: true);
    }

    private PageserverTimeline Add(TimelinePaths paths, TimelineMetadata metadata, RemoteTimeline? remote)
    {
        var timeline = new PageserverTimeline(paths, metadata, options, remote, _logger, metrics);
        if (!_timelines.TryAdd((metadata.TenantId, metadata.TimelineId), timeline))
            throw new RpcException(GrpcStatusCode.AlreadyExists, $"timeline {metadata.TenantId}/{metadata.TimelineId} exists");
        timeline.Start();
        return timeline;
    }

    /// <summary>Creates a timeline with initdb: its first image, and its WAL starting after initdb's.</summary>
    public async Task<PageserverTimeline> CreateAsync(string tenantId, string timelineId, IReadOnlyList<Uri> safekeepers, CancellationToken ct)
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
                var initdb = OsUser.StartInfoAsPostgres(options.Binaries.InitDb,
                    ["-D", data, "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync"]);
                (await ProcessRunner.RunAsync(initdb, TimeSpan.FromMinutes(2), ct)).ThrowIfFailed("initdb");
                var control = PgControlFile.ReadFromDataDirectory(data);
                if (control.State != DatabaseState.ShutDown)
                    throw new InvalidOperationException($"initdb left the cluster in state {control.State}, expected a clean shutdown");
                var segmentPath = Path.Combine(data, "pg_wal", WalGeometry.Default.SegmentFileName(1, WalGeometry.Default.SegmentNumber(control.Checkpoint)));
                var end = EndOfInitdbWal(segmentPath, control.Checkpoint);

                var generation = 1UL;
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
    public async Task<PageserverTimeline> BranchAsync(PageserverTimeline ancestor, string timelineId, Lsn at, IReadOnlyList<Uri> safekeepers, CancellationToken ct)
    {
        await _createLock.WaitAsync(ct);
        try
        {
            if (!await ancestor.WaitForIngestAsync(at, options.BasebackupWait, ct))
                throw new RpcException(GrpcStatusCode.OutOfRange, $"branch point {at} is beyond the ancestor's ingested WAL ({ancestor.IngestedLsn})");
            var image = ancestor.Images.NewestAtOrBelow(at)
                ?? throw new RpcException(GrpcStatusCode.OutOfRange, $"branch point {at} is below the ancestor's retention horizon {ancestor.OldestBasebackupLsn}");
            var (isBoundary, prev) = ancestor.RecordBoundary(at);
            if (!isBoundary)
                throw new RpcException(GrpcStatusCode.InvalidArgument, $"{at} is not a WAL record boundary of {ancestor.TenantId}/{ancestor.TimelineId} (branch at a commit, a timestamp, or the end of its WAL)");
            var paths = PrepareNew(ancestor.TenantId, timelineId);
            var generation = 1UL;
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
        if (!TimelineIds.IsValid(tenantId) || !TimelineIds.IsValid(timelineId))
            throw new RpcException(GrpcStatusCode.InvalidArgument, $"'{tenantId}'/'{timelineId}' is not a tenant/timeline id (32 hex characters each)");
        if (_timelines.ContainsKey((tenantId, timelineId)))
            throw new RpcException(GrpcStatusCode.AlreadyExists, $"timeline {tenantId}/{timelineId} exists");
        var paths = TimelinePaths.For(options.DataDirectory, tenantId, timelineId);
        if (Directory.Exists(paths.Root)) Directory.Delete(paths.Root, recursive: true); // a creation cut short
        Directory.CreateDirectory(paths.Root);
        return paths;
    }

    /// <summary>The metadata makes the timeline real; then the safekeepers learn it.</summary>
    private async Task<PageserverTimeline> FinishCreateAsync(TimelinePaths paths, TimelineMetadata metadata, IReadOnlyList<Uri> safekeepers, CancellationToken ct)
    {
        metadata.Save(paths.Metadata);
        var remote = remoteStore is null ? null : new RemoteTimeline(remoteStore, metadata.TenantId, metadata.TimelineId, metadata.Generation);
        var timeline = Add(paths, metadata, remote);
        var key = SafekeeperClient.Key(metadata.TenantId, metadata.TimelineId);
        foreach (var safekeeper in safekeepers)
        {
            try { await SafekeeperClient.CreateTimelineAsync(safekeeper, key, metadata.Start, metadata.SystemIdentifier, ct: ct); }
            catch (RpcException e) { throw new RpcException(GrpcStatusCode.Unavailable, $"safekeeper {safekeeper} could not create timeline {metadata.TenantId}/{metadata.TimelineId}: {e.Detail}"); }
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
        _timelines.Clear();
    }
}
