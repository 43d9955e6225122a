using System.CommandLine;
using Storage.Core;
using Storage.Core.Api;
using Storage.Core.Grpc;
using Storage.Proto.Pageserver;

namespace Storage.Cli.Commands;

/// <summary>`storagectl timeline create`: a new timeline from initdb, known to all three safekeepers.</summary>
public static class TimelineCommand
{
    public static Command Create()
    {
        var tenant = new Option<string?>("--tenant") { Description = "tenant id, 32 hex characters (default: the cluster's)" };
        var timeline = new Option<string?>("--timeline") { Description = "timeline id, 32 hex characters (default: a new one)" };
        var create = new Command("create", "create a timeline: initdb on the pageserver (its first image), and the timeline on every safekeeper") { tenant, timeline };
        create.SetAction((result, ct) => CliRunner.RunAsync(async () =>
        {
            var dir = CommonOptions.ClusterDir(result);
            var state = dir.Load();
            var tenantId = TimelineIds.Normalize(result.GetValue(tenant) ?? state.TenantId, "--tenant");
            var timelineId = TimelineIds.Normalize(result.GetValue(timeline) ?? TimelineIds.New(), "--timeline");
            var info = await CreateOnPageserverAsync(state, tenantId, timelineId, ct);
            Console.WriteLine($"tenant {tenantId} timeline {timelineId} start {new Lsn(info.StartLsn)}");
            return 0;
        }));
        return new Command("timeline", "manage timelines") { create };
    }

    /// <summary>The pageserver runs initdb, stores the first image and tells every safekeeper.</summary>
    public static async Task<TimelineInfo> CreateOnPageserverAsync(ClusterState state, string tenantId, string timelineId, CancellationToken ct,
        string? ancestor = null, Lsn ancestorLsn = default, DateTimeOffset? ancestorTime = null)
    {
        var pageserver = state.Pageservers.FirstOrDefault() ?? throw new CliError("the cluster has no pageserver");
        var request = new CreateTimelineRequest { Timeline = PageserverClient.Id(tenantId, timelineId), AncestorTimelineId = ancestor ?? "", AncestorLsn = ancestorLsn.Value };
        if (ancestorTime is { } t) request.AncestorTimestampMicros = (t - DateTimeOffset.UnixEpoch).Ticks / 10;
        request.Safekeepers.AddRange(state.Safekeepers.Select(s => s.Uri.ToString()));
        try { return await PageserverClient.CreateTimelineAsync(pageserver.Uri, request, ct); }
        catch (RpcException e) { throw new CliError($"the pageserver could not create timeline {tenantId}/{timelineId}: {e.Detail}"); }
    }
}
