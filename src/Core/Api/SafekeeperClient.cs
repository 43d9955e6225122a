using Grpc.Core;
using Storage.Core.Rpc;
using Storage.Proto.Safekeeper;
using SafekeeperGrpc = Storage.Proto.Safekeeper.Safekeeper;

namespace Storage.Core.Api;

/// <summary>
/// The safekeeper calls other components make (timeline create/status/list, pageserver feedback,
/// reading WAL), one place for building their requests, over the process's one channel per safekeeper.
/// </summary>
public static class SafekeeperClient
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(5);

    /// <summary>The generated client on the shared channel to <paramref name="address"/> (carrying <paramref name="token"/>, default: the process's own).</summary>
    public static SafekeeperGrpc.SafekeeperClient For(Uri address, string? token = null) => new(GrpcChannels.For(address, token));

    public static TimelineKey Key(string tenantId, string timelineId) => new() { TenantId = tenantId, TimelineId = timelineId };

    private static DateTime Deadline(TimeSpan? timeout) => DateTime.UtcNow + (timeout ?? DefaultTimeout);

    /// <summary>Creates a PostgreSQL 15 timeline with 16 MiB segments whose WAL begins at <paramref name="startLsn"/>.</summary>
    public static async Task<TimelineStatus> CreateTimelineAsync(Uri address, TimelineKey timeline, Lsn startLsn,
        ulong systemId = 0, TimeSpan? timeout = null, CancellationToken ct = default)
    {
        var request = new CreateTimelineRequest
        {
            Timeline = timeline,
            StartLsn = startLsn.Value,
            PgVersion = 150000,
            SystemId = systemId,
            WalSegmentSize = (uint)WalGeometry.DefaultSegmentSize,
        };
        return await For(address).CreateTimelineAsync(request, deadline: Deadline(timeout), cancellationToken: ct);
    }

    public static async Task<TimelineStatus> StatusAsync(Uri address, TimelineKey timeline, TimeSpan? timeout = null, CancellationToken ct = default,
        string? token = null) =>
        await For(address, token).GetTimelineStatusAsync(new TimelineStatusRequest { Timeline = timeline }, deadline: Deadline(timeout), cancellationToken: ct);

    public static async Task<ListTimelinesResponse> ListTimelinesAsync(Uri address, TimeSpan? timeout = null, CancellationToken ct = default) =>
        await For(address).ListTimelinesAsync(new ListTimelinesRequest(), deadline: Deadline(timeout), cancellationToken: ct);

    /// <summary>
    /// Tells a safekeeper that <paramref name="pageserverId"/>'s durable copy in object storage
    /// holds the timeline's WAL below <paramref name="remoteConsistentLsn"/>; returns the status
    /// with the remote_consistent_lsn the safekeeper kept (never lower than before, at most its commit LSN).
    /// </summary>
    public static async Task<TimelineStatus> ReportPageserverFeedbackAsync(Uri address, TimelineKey timeline, string pageserverId,
        Lsn remoteConsistentLsn, Lsn lastReceivedLsn = default, TimeSpan? timeout = null, CancellationToken ct = default)
    {
        var feedback = new PageserverFeedback
        {
            Timeline = timeline,
            PageserverId = pageserverId,
            RemoteConsistentLsn = remoteConsistentLsn.Value,
            LastReceivedLsn = lastReceivedLsn.Value,
        };
        return await For(address).ReportPageserverFeedbackAsync(feedback, deadline: Deadline(timeout), cancellationToken: ct);
    }

    /// <summary>
    /// Copies WAL [<paramref name="from"/>, <paramref name="to"/>) into <paramref name="destination"/>.
    /// With <paramref name="proposerTerm"/> 0 only committed WAL is served (waiting for it to be
    /// committed); a proposer of the safekeeper's current term may read up to its flush LSN.
    /// Throws if the stream ends early.
    /// </summary>
    public static async Task ReadWalAsync(Uri address, TimelineKey timeline, Lsn from, Lsn to, ulong proposerTerm,
        Stream destination, TimeSpan timeout, CancellationToken ct = default, string? token = null)
    {
        var request = new ReadWalRequest { Timeline = timeline, StartLsn = from.Value, EndLsn = to.Value, ProposerTerm = proposerTerm };
        using var call = For(address, token).ReadWal(request, deadline: DateTime.UtcNow + timeout, cancellationToken: ct);
        ulong copied = 0;
        await foreach (var chunk in call.ResponseStream.ReadAllAsync(ct))
        {
            if (chunk.StartLsn != from.Value + copied)
                throw new InvalidDataException($"safekeeper {address} sent WAL at {new Lsn(chunk.StartLsn)}, expected {from + copied}");
            await destination.WriteAsync(chunk.Data.Memory, ct);
            copied += (ulong)chunk.Data.Length;
        }
        if ((long)copied != to - from)
            throw new RpcException(new Status(StatusCode.Unavailable, $"safekeeper {address} ended the WAL stream at {from + copied}, before {to}"));
    }
}
