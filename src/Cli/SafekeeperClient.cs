using Storage.Core;
using Storage.Core.Api;
using Storage.Core.Grpc;
using Storage.Proto.Safekeeper;

namespace Storage.Cli;

/// <summary>The few gRPC calls storagectl makes to a safekeeper, each with a short timeout.</summary>
public static class SafekeeperClient
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(3);

    public static async Task<ListTimelinesResponse> ListTimelinesAsync(SafekeeperEntry sk)
    {
        using var channel = new GrpcChannel(sk.Uri);
        return await channel.UnaryAsync(SafekeeperApi.ListTimelines, new ListTimelinesRequest(), new CallOptions(Timeout: Timeout));
    }

    public static async Task<TimelineStatus> StatusAsync(SafekeeperEntry sk, string tenantId, string timelineId)
    {
        using var channel = new GrpcChannel(sk.Uri);
        return await channel.UnaryAsync(SafekeeperApi.GetTimelineStatus,
            new TimelineStatusRequest { Timeline = new TimelineKey { TenantId = tenantId, TimelineId = timelineId } }, new CallOptions(Timeout: Timeout));
    }

    /// <summary>Creates a timeline (16 MiB segments, PostgreSQL 15).</summary>
    public static async Task<TimelineStatus> CreateTimelineAsync(SafekeeperEntry sk, string tenantId, string timelineId, Lsn startLsn)
    {
        using var channel = new GrpcChannel(sk.Uri);
        var request = new CreateTimelineRequest
        {
            Timeline = new TimelineKey { TenantId = tenantId, TimelineId = timelineId },
            StartLsn = startLsn.Value,
            PgVersion = 150000,
            WalSegmentSize = (uint)WalGeometry.DefaultSegmentSize,
        };
        try { return await channel.UnaryAsync(SafekeeperApi.CreateTimeline, request, new CallOptions(Timeout: Timeout)); }
        catch (RpcException e) { throw new CliError($"{sk.Name}: could not create timeline {tenantId}/{timelineId}: {e.Detail}"); }
    }
}
