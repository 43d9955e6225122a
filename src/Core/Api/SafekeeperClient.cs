using Storage.Core.Grpc;
using Storage.Proto.Safekeeper;

namespace Storage.Core.Api;

/// <summary>
/// The safekeeper calls other components make (timeline create/status/list and reading WAL), one
/// place for building their requests. Each call opens a short-lived channel to <c>address</c>.
/// </summary>
public static class SafekeeperClient
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(5);

    public static TimelineKey Key(string tenantId, string timelineId) => new() { TenantId = tenantId, TimelineId = timelineId };

    /// <summary>Creates a PostgreSQL 15 timeline with 16 MiB segments whose WAL begins at <paramref name="startLsn"/>.</summary>
    public static async Task<TimelineStatus> CreateTimelineAsync(Uri address, TimelineKey timeline, Lsn startLsn,
        ulong systemId = 0, TimeSpan? timeout = null, CancellationToken ct = default)
    {
        using var channel = new GrpcChannel(address);
        var request = new CreateTimelineRequest
        {
            Timeline = timeline,
            StartLsn = startLsn.Value,
            PgVersion = 150000,
            SystemId = systemId,
            WalSegmentSize = (uint)WalGeometry.DefaultSegmentSize,
        };
        return await channel.UnaryAsync(SafekeeperApi.CreateTimeline, request, new CallOptions(timeout ?? DefaultTimeout, ct));
    }

    public static async Task<TimelineStatus> StatusAsync(Uri address, TimelineKey timeline, TimeSpan? timeout = null, CancellationToken ct = default)
    {
        using var channel = new GrpcChannel(address);
        return await channel.UnaryAsync(SafekeeperApi.GetTimelineStatus, new TimelineStatusRequest { Timeline = timeline },
            new CallOptions(timeout ?? DefaultTimeout, ct));
    }

    public static async Task<ListTimelinesResponse> ListTimelinesAsync(Uri address, TimeSpan? timeout = null, CancellationToken ct = default)
    {
        using var channel = new GrpcChannel(address);
        return await channel.UnaryAsync(SafekeeperApi.ListTimelines, new ListTimelinesRequest(), new CallOptions(timeout ?? DefaultTimeout, ct));
    }

    /// <summary>
    /// Tells a safekeeper that <paramref name="pageserverId"/>'s durable copy in object storage
    /// holds the timeline's WAL below <paramref name="remoteConsistentLsn"/>; returns the status
    /// with the remote_consistent_lsn the safekeeper kept (never lower than before, at most its commit LSN).
    /// </summary>
    public static async Task<TimelineStatus> ReportPageserverFeedbackAsync(Uri address, TimelineKey timeline, string pageserverId,
        Lsn remoteConsistentLsn, Lsn lastReceivedLsn = default, TimeSpan? timeout = null, CancellationToken ct = default)
    {
        using var channel = new GrpcChannel(address);
        var feedback = new PageserverFeedback
        {
            Timeline = timeline,
            PageserverId = pageserverId,
            RemoteConsistentLsn = remoteConsistentLsn.Value,
            LastReceivedLsn = lastReceivedLsn.Value,
        };
        return await channel.UnaryAsync(SafekeeperApi.ReportPageserverFeedback, feedback, new CallOptions(timeout ?? DefaultTimeout, ct));
    }

    /// <summary>
    /// Copies WAL [<paramref name="from"/>, <paramref name="to"/>) into <paramref name="destination"/>.
    /// With <paramref name="proposerTerm"/> 0 only committed WAL is served (waiting for it to be
    /// committed); a proposer of the safekeeper's current term may read up to its flush LSN.
    /// Throws if the stream ends early.
    /// </summary>
    public static async Task ReadWalAsync(GrpcChannel channel, TimelineKey timeline, Lsn from, Lsn to, ulong proposerTerm,
        Stream destination, TimeSpan timeout, CancellationToken ct = default)
    {
        var request = new ReadWalRequest { Timeline = timeline, StartLsn = from.Value, EndLsn = to.Value, ProposerTerm = proposerTerm };
        using var call = channel.ServerStreaming(SafekeeperApi.ReadWal, request, new CallOptions(timeout, ct));
        ulong copied = 0;
        await foreach (var chunk in call.ResponseStream.ReadAllAsync(ct))
        {
            if (chunk.StartLsn != from.Value + copied)
                throw new RpcException(GrpcStatusCode.Internal, $"safekeeper sent WAL at {new Lsn(chunk.StartLsn)}, expected {from + copied}");
            await destination.WriteAsync(chunk.Data.Memory, ct);
            copied += (ulong)chunk.Data.Length;
        }
        if ((long)copied != to - from)
            throw new RpcException(GrpcStatusCode.Unavailable, $"safekeeper ended the WAL stream at {from + copied}, before {to}");
    }
}
