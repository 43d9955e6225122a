using System.Formats.Tar;
using Grpc.Core;
using Storage.Core.Basebackup;
using Storage.Core.Postgres;
using Storage.Core.Rpc;
using Storage.Proto.Pageserver;
using PageserverGrpc = Storage.Proto.Pageserver.Pageserver;

namespace Storage.Core.Api;

/// <summary>
/// Calls other components make to a pageserver, one place for building their requests, over the
/// process's one channel per pageserver.
/// </summary>
public static class PageserverClient
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(10);

    /// <summary>A timeline's creation runs initdb (or copies the ancestor's data) and fsyncs on every safekeeper.</summary>
    public static readonly TimeSpan CreateTimeout = TimeSpan.FromMinutes(3);

    /// <summary>The generated client on the shared channel to <paramref name="address"/>.</summary>
    public static PageserverGrpc.PageserverClient For(Uri address, string? token = null) => new(GrpcChannels.For(address, token));

    public static TimelineRef Id(string tenantId, string timelineId) => new() { TenantId = tenantId, TimelineId = timelineId };

    private static DateTime Deadline(TimeSpan? timeout) => DateTime.UtcNow + (timeout ?? DefaultTimeout);

    public static async Task<TimelineInfo> CreateTimelineAsync(Uri address, CreateTimelineRequest request, CancellationToken ct = default) =>
        await For(address).CreateTimelineAsync(request, deadline: Deadline(CreateTimeout), cancellationToken: ct);

    public static async Task<TimelineInfo> GetTimelineAsync(Uri address, string tenantId, string timelineId, TimeSpan? timeout = null, CancellationToken ct = default,
        string? token = null) =>
        await For(address, token).GetTimelineAsync(new TimelineRequest { Timeline = Id(tenantId, timelineId) }, deadline: Deadline(timeout), cancellationToken: ct);

    public static async Task<ListTimelinesResponse> ListTimelinesAsync(Uri address, TimeSpan? timeout = null, CancellationToken ct = default) =>
        await For(address).ListTimelinesAsync(new ListTimelinesRequest(), deadline: Deadline(timeout), cancellationToken: ct);

    public static async Task<TimelineInfo> SetLocationAsync(Uri address, string tenantId, string timelineId, LocationMode mode, ulong generation,
        TimeSpan timeout, CancellationToken ct = default)
    {
        var request = new LocationRequest { Timeline = Id(tenantId, timelineId), Mode = mode, Generation = generation };
        return await For(address).SetLocationAsync(request, deadline: Deadline(timeout), cancellationToken: ct);
    }

    public static async Task<LsnForTimestampResponse> LsnForTimestampAsync(Uri address, string tenantId, string timelineId, DateTimeOffset time, CancellationToken ct = default)
    {
        var request = new LsnForTimestampRequest { Timeline = Id(tenantId, timelineId), TimestampMicros = (time - DateTimeOffset.UnixEpoch).Ticks / 10 };
        return await For(address).LsnForTimestampAsync(request, deadline: Deadline(DefaultTimeout), cancellationToken: ct);
    }

    /// <summary>
    /// Streams <c>Basebackup(lsn)</c> into <paramref name="destination"/> and verifies its size and
    /// CRC-32C against the last chunk. Returns the image it was built on. With
    /// <paramref name="baseImage"/>, only pg_wal comes: the caller holds that image's files.
    /// <paramref name="timeout"/> is how long the pageserver may wait for the LSN to be ingested;
    /// the transfer itself gets ten minutes more.
    /// </summary>
    public static async Task<ImageIdentity> BasebackupAsync(Uri address, string tenantId, string timelineId, Lsn lsn, Stream destination,
        TimeSpan timeout, CancellationToken ct = default, ImageIdentity? baseImage = null, string? token = null)
    {
        var request = new BasebackupRequest { Timeline = Id(tenantId, timelineId), Lsn = lsn.Value, WaitMillis = (uint)Math.Min(timeout.TotalMilliseconds, uint.MaxValue) };
        if (baseImage is { } image) (request.BaseImageLsn, request.BaseImageCrc32C) = (image.End.Value, image.Crc32C);
        using var call = For(address, token).Basebackup(request, deadline: Deadline(timeout + TimeSpan.FromMinutes(10)), cancellationToken: ct);
        uint crc = Crc32C.Initial;
        ulong total = 0;
        ImageIdentity origin = default;
        bool verified = false;
        await foreach (var chunk in call.ResponseStream.ReadAllAsync(ct))
        {
            if (verified)
                throw new InvalidDataException($"pageserver {address} sent more of the basebackup of {tenantId}/{timelineId} at {lsn} after its last chunk");
            if (chunk.ImageLsn != 0) origin = new ImageIdentity(new Lsn(chunk.ImageLsn), chunk.ImageCrc32C);
            crc = Crc32C.Append(crc, chunk.Data.Span);
            total += (ulong)chunk.Data.Length;
            await destination.WriteAsync(chunk.Data.Memory, ct);
            if (!chunk.Last) continue;
            if (chunk.TotalBytes != total || chunk.Crc32C != Crc32C.Finish(crc))
                throw new InvalidDataException($"basebackup of {tenantId}/{timelineId} at {lsn} arrived damaged: {total} bytes with CRC {Crc32C.Finish(crc):X8}, the pageserver sent {chunk.TotalBytes} bytes with CRC {chunk.Crc32C:X8}");
            verified = true;
        }
        // The stream read to its end, not dropped after the last chunk: a call disposed early is
        // cancelled, and the pageserver's write of that chunk (or its bookkeeping after) could fail.
        if (verified) return origin;
        throw new RpcException(new Status(StatusCode.Unavailable, $"pageserver {address} ended the basebackup of {tenantId}/{timelineId} at {lsn} after {total} bytes, before its last chunk"));
    }
}

/// <summary>
/// A compute's data directory from the pageserver: <c>Basebackup(E)</c> is unpacked as it streams
/// (through a pipe), its checksum is checked, and its last WAL segment (sent only up to the LSN) is
/// extended to a whole segment before the data directory is handed to PostgreSQL.
/// </summary>
/// <param name="token">Sent on the calls (a compute's tenant-bound token); null: the process's own.</param>
public sealed class PageserverBasebackupSource(IReadOnlyList<Uri> pageservers, TimeSpan wait, string? token = null) : IBasebackupSource
{
    public Task<ImageIdentity> FetchAsync(string tenantId, string timelineId, Lsn lsn, string targetDirectory, CancellationToken ct) =>
        FromFirstAnsweringAsync(tenantId, timelineId, lsn, () => { if (Directory.Exists(targetDirectory)) Directory.Delete(targetDirectory, recursive: true); }, pageserver =>
        {
            Directory.CreateDirectory(targetDirectory);
            if (Directory.EnumerateFileSystemEntries(targetDirectory).Any()) throw new InvalidOperationException($"{targetDirectory} is not empty");
            return FetchFromAsync(pageserver, tenantId, timelineId, lsn, targetDirectory, null, ct);
        });

    public async Task FetchWalSinceImageAsync(string tenantId, string timelineId, Lsn lsn, ImageIdentity image, string targetDirectory, CancellationToken ct)
    {
        var pgWal = Path.Combine(targetDirectory, "pg_wal");
        void DeleteWal() { if (Directory.Exists(pgWal)) Directory.Delete(pgWal, recursive: true); }
        await FromFirstAnsweringAsync(tenantId, timelineId, lsn, DeleteWal, pageserver =>
        {
            DeleteWal(); // the image's own WAL (from its redo point to its end) is part of what comes
            return FetchFromAsync(pageserver, tenantId, timelineId, lsn, targetDirectory, image, ct);
        });
    }

    /// <summary>Tries each pageserver in turn; <paramref name="undo"/> removes what a failed one left.</summary>
    private async Task<ImageIdentity> FromFirstAnsweringAsync(string tenantId, string timelineId, Lsn lsn, Action undo, Func<Uri, Task<ImageIdentity>> fetch)
    {
        if (pageservers.Count == 0) throw new ArgumentException("no pageserver to get a basebackup from");
        Exception? last = null;
        foreach (var pageserver in pageservers)
        {
            try
            {
                return await fetch(pageserver);
            }
            // A pageserver that is down, or holds the timeline only as a secondary (or not at all),
            // is skipped: the next one in the list may be the attached one.
            catch (Exception e) when (e is RpcException { StatusCode: StatusCode.Unavailable or StatusCode.DeadlineExceeded or StatusCode.FailedPrecondition or StatusCode.NotFound }
                                          or IOException or HttpRequestException)
            {
                last = e;
                undo();
            }
        }
        throw new InvalidOperationException($"no pageserver could serve a basebackup of {tenantId}/{timelineId} at {lsn}: {last?.Message}", last);
    }

    private async Task<ImageIdentity> FetchFromAsync(Uri pageserver, string tenantId, string timelineId, Lsn lsn, string targetDirectory, ImageIdentity? baseImage, CancellationToken ct)
    {
        var pipe = new System.IO.Pipelines.Pipe();
        var receive = Task.Run(async () =>
        {
            await using var writer = pipe.Writer.AsStream();
            try { return await PageserverClient.BasebackupAsync(pageserver, tenantId, timelineId, lsn, writer, wait, ct, baseImage, token); }
            catch (Exception e) { await pipe.Writer.CompleteAsync(e); throw; }
        }, ct);
        await using (var reader = pipe.Reader.AsStream())
        {
            try { await TarFile.ExtractToDirectoryAsync(reader, targetDirectory, overwriteFiles: false, ct); }
            catch when (receive.IsFaulted) { await receive; throw; }
        }
        var image = await receive; // throws if the checksum did not match: the directory is then not used
        DataDirectoryAssembler.PadWalSegments(targetDirectory);
        await DataDirectoryAssembler.HandToPostgresAsync(targetDirectory, ct);
        return image;
    }
}
