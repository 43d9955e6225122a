using System.Formats.Tar;
using Storage.Core.Basebackup;
using Storage.Core.Grpc;
using Storage.Core.Postgres;
using Storage.Proto.Pageserver;

namespace Storage.Core.Api;

/// <summary>Calls other components make to a pageserver, one place for building their requests.</summary>
public static class PageserverClient
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(10);

    public static TimelineRef Id(string tenantId, string timelineId) => new() { TenantId = tenantId, TimelineId = timelineId };

    public static async Task<TimelineInfo> CreateTimelineAsync(Uri address, CreateTimelineRequest request, CancellationToken ct = default)
    {
        using var channel = new GrpcChannel(address);
        return await channel.UnaryAsync(PageserverApi.CreateTimeline, request, new CallOptions(TimeSpan.FromMinutes(3), ct));
    }

    public static async Task<TimelineInfo> GetTimelineAsync(Uri address, string tenantId, string timelineId, TimeSpan? timeout = null, CancellationToken ct = default)
    {
        using var channel = new GrpcChannel(address);
        return await channel.UnaryAsync(PageserverApi.GetTimeline, new TimelineRequest { Timeline = Id(tenantId, timelineId) }, new CallOptions(timeout ?? DefaultTimeout, ct));
    }

    public static async Task<ListTimelinesResponse> ListTimelinesAsync(Uri address, TimeSpan? timeout = null, CancellationToken ct = default)
    {
        using var channel = new GrpcChannel(address);
        return await channel.UnaryAsync(PageserverApi.ListTimelines, new ListTimelinesRequest(), new CallOptions(timeout ?? DefaultTimeout, ct));
    }

    public static async Task<LsnForTimestampResponse> LsnForTimestampAsync(Uri address, string tenantId, string timelineId, DateTimeOffset time, CancellationToken ct = default)
    {
        using var channel = new GrpcChannel(address);
        var request = new LsnForTimestampRequest { Timeline = Id(tenantId, timelineId), TimestampMicros = (time - DateTimeOffset.UnixEpoch).Ticks / 10 };
        return await channel.UnaryAsync(PageserverApi.LsnForTimestamp, request, new CallOptions(DefaultTimeout, ct));
    }

    /// <summary>
    /// Streams <c>Basebackup(lsn)</c> into <paramref name="destination"/> and verifies its size and
    /// CRC-32C against the last chunk. Returns the image LSN it started from.
    /// </summary>
    public static async Task<ulong> BasebackupAsync(Uri address, string tenantId, string timelineId, Lsn lsn, Stream destination,
        TimeSpan timeout, CancellationToken ct = default)
    {
        using var channel = new GrpcChannel(address);
        var request = new BasebackupRequest { Timeline = Id(tenantId, timelineId), Lsn = lsn.Value, WaitMillis = (uint)Math.Min(timeout.TotalMilliseconds, uint.MaxValue) };
        using var call = channel.ServerStreaming(PageserverApi.Basebackup, request, new CallOptions(timeout + TimeSpan.FromMinutes(10), ct));
        uint crc = Crc32C.Initial;
        ulong total = 0, imageLsn = 0;
        await foreach (var chunk in call.ResponseStream.ReadAllAsync(ct))
        {
            if (chunk.ImageLsn != 0) imageLsn = chunk.ImageLsn;
            crc = Crc32C.Append(crc, chunk.Data.Span);
            total += (ulong)chunk.Data.Length;
            await destination.WriteAsync(chunk.Data.Memory, ct);
            if (!chunk.Last) continue;
            if (chunk.TotalBytes != total || chunk.Crc32C != Crc32C.Finish(crc))
                throw new InvalidDataException($"basebackup of {tenantId}/{timelineId} at {lsn} arrived damaged: {total} bytes with CRC {Crc32C.Finish(crc):X8}, the pageserver sent {chunk.TotalBytes} bytes with CRC {chunk.Crc32C:X8}");
            return imageLsn;
        }
        throw new RpcException(GrpcStatusCode.Unavailable, $"the pageserver ended the basebackup of {tenantId}/{timelineId} at {lsn} after {total} bytes, before its last chunk");
    }
}

/// <summary>
/// A compute's data directory from the pageserver: <c>Basebackup(E)</c> is unpacked as it streams
/// (through a pipe), its checksum is checked, and its last WAL segment (sent only up to the LSN) is
/// extended to a whole segment before the data directory is handed to PostgreSQL.
/// </summary>
public sealed class PageserverBasebackupSource(IReadOnlyList<Uri> pageservers, TimeSpan wait) : IBasebackupSource
{
    public async Task FetchAsync(string tenantId, string timelineId, Lsn lsn, string targetDirectory, CancellationToken ct)
    {
        if (pageservers.Count == 0) throw new ArgumentException("no pageserver to get a basebackup from");
        Exception? last = null;
        foreach (var pageserver in pageservers)
        {
            try
            {
                await FetchFromAsync(pageserver, tenantId, timelineId, lsn, targetDirectory, ct);
                return;
            }
            catch (Exception e) when (e is RpcException { Status: GrpcStatusCode.Unavailable or GrpcStatusCode.DeadlineExceeded } or IOException or HttpRequestException)
            {
                last = e;
                if (Directory.Exists(targetDirectory)) Directory.Delete(targetDirectory, recursive: true);
            }
        }
        throw new InvalidOperationException($"no pageserver could serve a basebackup of {tenantId}/{timelineId} at {lsn}: {last?.Message}", last);
    }

    private async Task FetchFromAsync(Uri pageserver, string tenantId, string timelineId, Lsn lsn, string targetDirectory, CancellationToken ct)
    {
        Directory.CreateDirectory(targetDirectory);
        if (Directory.EnumerateFileSystemEntries(targetDirectory).Any()) throw new InvalidOperationException($"{targetDirectory} is not empty");
        var pipe = new System.IO.Pipelines.Pipe();
        var receive = Task.Run(async () =>
        {
            await using var writer = pipe.Writer.AsStream();
            try { await PageserverClient.BasebackupAsync(pageserver, tenantId, timelineId, lsn, writer, wait, ct); }
            catch (Exception e) { await pipe.Writer.CompleteAsync(e); throw; }
        }, ct);
        await using (var reader = pipe.Reader.AsStream())
        {
            try { await TarFile.ExtractToDirectoryAsync(reader, targetDirectory, overwriteFiles: false, ct); }
            catch when (receive.IsFaulted) { await receive; throw; }
        }
        await receive; // throws if the checksum did not match: the directory is then not used
        DataDirectoryAssembler.PadWalSegments(targetDirectory);
        await DataDirectoryAssembler.HandToPostgresAsync(targetDirectory, ct);
    }
}
