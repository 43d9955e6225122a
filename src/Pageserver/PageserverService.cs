using Google.Protobuf;
using Grpc.Core;
using Storage.Core.Auth;
using Storage.Core.Rpc;
using Microsoft.Extensions.Logging;
using Storage.Core;
using Storage.Core.Api;
using Storage.Core.Errors;
using Storage.Core.Processes;
using Storage.Core.Storage;
using Storage.Pageserver.Images;
using Storage.Pageserver.Timelines;
using Storage.Proto.Pageserver;
using PageserverGrpc = Storage.Proto.Pageserver.Pageserver;

namespace Storage.Pageserver;

/// <summary>
/// The pageserver's gRPC API (proto/pageserver.proto) over the timeline manager. Domain failures
/// are exceptions (<see cref="ServiceException"/>); the host's interceptor turns them into status codes.
/// </summary>
internal sealed class PageserverService(TimelineManager timelines, PageserverOptions options, PageserverMetrics metrics, TimeProvider time,
    ILogger<PageserverService> logger) : PageserverGrpc.PageserverBase
{
    private const int ChunkSize = 256 * 1024;

    [Allow(Scope.Controller)]
    public override Task<TimelineInfo> CreateTimeline(CreateTimelineRequest request, ServerCallContext context) => CreateAsync(request, context.CancellationToken);

    [Allow(Scope.Controller, Scope.ControlPlane, Scope.Compute)]
    public override Task<TimelineInfo> GetTimeline(TimelineRequest request, ServerCallContext context)
    {
        context.RequireTenant(request.Timeline?.TenantId ?? "");
        return Task.FromResult(Info(Get(request.Timeline)));
    }

    [Allow(Scope.Controller, Scope.ControlPlane)]
    public override Task<ListTimelinesResponse> ListTimelines(ListTimelinesRequest request, ServerCallContext context)
    {
        var response = new ListTimelinesResponse();
        response.Timelines.AddRange(timelines.All.Select(Info));
        response.Timelines.AddRange(timelines.Secondaries.Select(Info));
        return Task.FromResult(response);
    }

    [Allow(Scope.Controller)]
    public override Task<TimelineInfo> SetLocation(LocationRequest request, ServerCallContext context) => SetLocationAsync(request, context.CancellationToken);

    [Allow(Scope.ControlPlane, Scope.Compute)]
    public override Task<LsnForTimestampResponse> LsnForTimestamp(LsnForTimestampRequest request, ServerCallContext context)
    {
        context.RequireTenant(request.Timeline?.TenantId ?? "");
        return Task.FromResult(LsnForTimestamp(request));
    }

    [Allow(Scope.ControlPlane, Scope.Compute)]
    public override Task Basebackup(BasebackupRequest request, IServerStreamWriter<BasebackupChunk> responseStream, ServerCallContext context)
    {
        context.RequireTenant(request.Timeline?.TenantId ?? "");
        return BasebackupAsync(request, responseStream, context.CancellationToken);
    }

    private PageserverTimeline Get(TimelineRef? id) =>
        id is null ? throw new InvalidRequestException("timeline is missing") : timelines.Get(id.TenantId, id.TimelineId);

    private async Task<TimelineInfo> CreateAsync(CreateTimelineRequest request, CancellationToken ct)
    {
        if (request.Timeline is null) throw new InvalidRequestException("timeline is missing");
        if (options.Controller is { } controller && request.Generation == 0)
            throw new PreconditionFailedException($"pageserver {options.Id} is placed by the storage controller at {controller}: create timelines there");
        var generation = request.Generation == 0 ? 1 : request.Generation;
        var safekeepers = request.Safekeepers.Select(ParseAddress).ToList();
        if (safekeepers.Count == 0) safekeepers = options.Safekeepers.ToList();
        var (tenant, timeline) = (request.Timeline.TenantId, request.Timeline.TimelineId);
        if (string.IsNullOrEmpty(request.AncestorTimelineId))
            return Info(await timelines.CreateAsync(tenant, timeline, safekeepers, generation, ct));

        var ancestor = timelines.Get(tenant, request.AncestorTimelineId);
        Lsn at;
        if (request.AncestorLsn != 0) at = new Lsn(request.AncestorLsn);
        else if (request.AncestorTimestampMicros != 0)
        {
            var time = DateTimeOffset.UnixEpoch.AddTicks(request.AncestorTimestampMicros * 10);
            at = ancestor.LastCommitAtOrBefore(time)?.End
                ?? throw new OutOfRangeException($"timeline {tenant}/{request.AncestorTimelineId} has no commit at or before {time:O} still within retention");
        }
        else at = ancestor.IngestedLsn;
        return Info(await timelines.BranchAsync(ancestor, timeline, at, safekeepers, generation, ct));
    }

    private async Task<TimelineInfo> SetLocationAsync(LocationRequest request, CancellationToken ct)
    {
        if (request.Timeline is null) throw new InvalidRequestException("timeline is missing");
        var (tenant, timeline) = (request.Timeline.TenantId, request.Timeline.TimelineId);
        return await timelines.SetLocationAsync(tenant, timeline, request.Mode, request.Generation, ct) switch
        {
            PageserverTimeline attached => Info(attached),
            SecondaryTimeline secondary => Info(secondary),
            _ => new TimelineInfo { Timeline = PageserverClient.Id(tenant, timeline), Mode = LocationMode.Detached },
        };
    }

    private LsnForTimestampResponse LsnForTimestamp(LsnForTimestampRequest request)
    {
        var timeline = Get(request.Timeline);
        var time = DateTimeOffset.UnixEpoch.AddTicks(request.TimestampMicros * 10);
        var commit = timeline.LastCommitAtOrBefore(time)
            ?? throw new OutOfRangeException($"no commit of {timeline.TenantId}/{timeline.TimelineId} at or before {time:O} is within retention");
        return new LsnForTimestampResponse { Lsn = commit.End.Value, CommitTimestampMicros = (commit.Time - DateTimeOffset.UnixEpoch).Ticks / 10 };
    }

    private async Task BasebackupAsync(BasebackupRequest request, IServerStreamWriter<BasebackupChunk> responses, CancellationToken ct)
    {
        var started = time.GetTimestamp();
        var timeline = Get(request.Timeline);
        var lsn = new Lsn(request.Lsn);
        var metadata = timeline.Metadata;
        if (lsn < metadata.Start)
            throw new OutOfRangeException($"{lsn} is before the start of timeline {timeline.TenantId}/{timeline.TimelineId} ({metadata.Start})");
        if (lsn < timeline.OldestBasebackupLsn)
            throw new OutOfRangeException($"{lsn} is below the retention horizon of {timeline.TenantId}/{timeline.TimelineId}: the oldest basebackup possible is at {timeline.OldestBasebackupLsn}");
        var wait = request.WaitMillis == 0 ? options.BasebackupWait : TimeSpan.FromMilliseconds(request.WaitMillis);
        if (!await timeline.WaitForIngestAsync(lsn, wait, ct))
        {
            var (commit, ingested) = (timeline.SafekeeperCommitLsn, timeline.IngestedLsn);
            if (lsn > commit) throw new OutOfRangeException($"{lsn} is above the safekeepers' commit LSN {commit} of {timeline.TenantId}/{timeline.TimelineId}");
            throw new NotIngestedYetException($"WAL of {timeline.TenantId}/{timeline.TimelineId} is ingested only up to {ingested}, not yet {lsn} (waited {wait.TotalSeconds:0.#} s)", ingested);
        }
        if (request.BaseImageLsn != 0)
        {
            await WalSinceImageAsync(timeline, request, lsn, responses, started, ct);
            return;
        }
        var image = timeline.Images.NewestAtOrBelow(lsn)
            ?? throw new OutOfRangeException($"no image of {timeline.TenantId}/{timeline.TimelineId} at or below {lsn}");
        Stream tar;
        try { tar = await timeline.Images.OpenVerifiedAsync(image, ct); }
        catch (CorruptFileException e) { throw new DataLossException($"image {image.End} of {timeline.TenantId}/{timeline.TimelineId} is damaged: {e.Message}", e); }
        await using var _ = tar;
        await StreamAsync(timeline, image, lsn, walOnly: false, started, responses, output => BasebackupWriter.WriteAsync(tar, image, timeline.Wal, lsn, output, ct), ct);
    }

    /// <summary>Only pg_wal, for a caller that holds the image's files: a pooled VM prepared for the timeline.</summary>
    private async Task WalSinceImageAsync(PageserverTimeline timeline, BasebackupRequest request, Lsn lsn, IServerStreamWriter<BasebackupChunk> responses,
        long started, CancellationToken ct)
    {
        var image = timeline.Images.All.FirstOrDefault(i => i.EndLsn == request.BaseImageLsn && i.TarCrc32C == request.BaseImageCrc32C)
            ?? throw new PreconditionFailedException(
                $"image {new Lsn(request.BaseImageLsn)} (CRC {request.BaseImageCrc32C:X8}) of {timeline.TenantId}/{timeline.TimelineId} is not kept any more; ask for a whole basebackup");
        if (lsn < image.End)
            throw new InvalidRequestException($"a basebackup at {lsn} cannot be built on the image at {image.End}");
        await StreamAsync(timeline, image, lsn, walOnly: true, started, responses, async output =>
        {
            await BasebackupWriter.WriteWalOnlyAsync(image, timeline.Wal, lsn, output, ct);
            // Retention drops an image before the WAL it needs: while the image is still listed, every
            // segment read above was there (a deleted one would have read as zeros).
            if (!timeline.Images.All.Contains(image))
                throw new PreconditionFailedException(
                    $"image {image.End} of {timeline.TenantId}/{timeline.TimelineId} fell out of retention while its WAL was sent; ask for a whole basebackup");
        }, ct);
    }

    /// <summary>Sends what <paramref name="write"/> writes as chunks, the last with the size and CRC-32C of all of it.</summary>
    private async Task StreamAsync(PageserverTimeline timeline, ImageLayer image, Lsn lsn, bool walOnly, long started,
        IServerStreamWriter<BasebackupChunk> responses, Func<Stream, Task> write, CancellationToken ct)
    {
        await using var chunks = new ChunkWriter(responses, image, ct);
        await using (var checksummed = new Crc32CWriteStream(chunks))
        {
            await write(checksummed);
            await checksummed.FlushAsync(ct);
            await chunks.FinishAsync(checksummed.BytesWritten, checksummed.Crc32C);
            var took = time.GetElapsedTime(started);
            metrics.Basebackup(timeline.TenantId, timeline.TimelineId, checksummed.BytesWritten, walOnly, took);
            logger.LogInformation("basebackup of {TenantId}/{TimelineId} at {Lsn} served from image {Image}{Part}: {Bytes} bytes in {Millis:F0} ms",
                timeline.TenantId, timeline.TimelineId, lsn, image.End, walOnly ? " (WAL only)" : "", checksummed.BytesWritten, took.TotalMilliseconds);
        }
    }

    private static TimelineInfo Info(PageserverTimeline timeline)
    {
        var metadata = timeline.Metadata;
        var images = timeline.Images.All;
        return new TimelineInfo
        {
            Timeline = PageserverClient.Id(metadata.TenantId, metadata.TimelineId),
            StartLsn = metadata.StartLsn,
            IngestedLsn = timeline.IngestedLsn.Value,
            SafekeeperCommitLsn = timeline.SafekeeperCommitLsn.Value,
            RemoteConsistentLsn = metadata.RemoteConsistentLsn,
            OldestBasebackupLsn = images.Count > 0 ? images[0].EndLsn : 0,
            LatestImageLsn = images.Count > 0 ? images[^1].EndLsn : 0,
            LatestImageCrc32C = images.Count > 0 ? images[^1].TarCrc32C : 0,
            ImageCount = (uint)images.Count,
            Generation = metadata.Generation,
            AncestorTimelineId = metadata.AncestorTimelineId ?? "",
            AncestorLsn = metadata.AncestorLsn,
            WalSource = timeline.WalSource ?? "",
            SystemIdentifier = metadata.SystemIdentifier,
            Mode = LocationMode.Attached,
        };
    }

    /// <summary>A secondary: what it has downloaded (the synced manifest's resume point and images).</summary>
    private static TimelineInfo Info(SecondaryTimeline secondary)
    {
        var synced = secondary.Synced;
        var info = new TimelineInfo { Timeline = PageserverClient.Id(secondary.TenantId, secondary.TimelineId), Mode = LocationMode.Secondary };
        if (synced is null) return info;
        info.StartLsn = synced.Metadata.StartLsn;
        info.RemoteConsistentLsn = synced.Metadata.RemoteConsistentLsn;
        info.ImageCount = (uint)synced.Images.Count;
        info.LatestImageLsn = synced.Images.Count > 0 ? synced.Images.Max(i => i.EndLsn) : 0;
        info.AncestorTimelineId = synced.Metadata.AncestorTimelineId ?? "";
        info.AncestorLsn = synced.Metadata.AncestorLsn;
        info.SystemIdentifier = synced.Metadata.SystemIdentifier;
        return info;
    }

    private static Uri ParseAddress(string address) =>
        Uri.TryCreate(address, UriKind.Absolute, out var uri) ? uri : throw new InvalidRequestException($"'{address}' is not a safekeeper address");

    /// <summary>Cuts the tar stream into BasebackupChunk messages; the last one carries size and CRC.</summary>
    private sealed class ChunkWriter(IServerStreamWriter<BasebackupChunk> responses, ImageLayer image, CancellationToken ct) : Stream
    {
        private readonly byte[] _buffer = new byte[ChunkSize];
        private int _filled;
        private bool _first = true;

        public override void Write(ReadOnlySpan<byte> buffer) => throw new NotSupportedException("basebackup chunks are written asynchronously");

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken token = default)
        {
            while (!buffer.IsEmpty)
            {
                int n = Math.Min(buffer.Length, _buffer.Length - _filled);
                buffer[..n].CopyTo(_buffer.AsMemory(_filled));
                _filled += n;
                buffer = buffer[n..];
                if (_filled == _buffer.Length) await SendAsync(last: false, 0, 0);
            }
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken token) => WriteAsync(buffer.AsMemory(offset, count), token).AsTask();

        public Task FinishAsync(long total, uint crc) => SendAsync(last: true, (ulong)total, crc);

        private async Task SendAsync(bool last, ulong total, uint crc)
        {
            var chunk = new BasebackupChunk { Data = ByteString.CopyFrom(_buffer, 0, _filled), Last = last, TotalBytes = total, Crc32C = crc };
            if (_first) { (chunk.ImageLsn, chunk.ImageCrc32C) = (image.EndLsn, image.TarCrc32C); _first = false; }
            _filled = 0;
            await responses.WriteAsync(chunk, ct);
        }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));
        public override void Flush() { }
        public override Task FlushAsync(CancellationToken token) => Task.CompletedTask;
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
