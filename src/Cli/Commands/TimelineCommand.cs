using System.CommandLine;
using Storage.Core;
using Storage.Core.Api;

namespace Storage.Cli.Commands;

/// <summary>`storagectl timeline create`: the same timeline on all three safekeepers.</summary>
public static class TimelineCommand
{
    public static Command Create()
    {
        var tenant = new Option<string?>("--tenant") { Description = "tenant id, 32 hex characters (default: a new one)" };
        var timeline = new Option<string?>("--timeline") { Description = "timeline id, 32 hex characters (default: a new one)" };
        var startLsn = new Option<string>("--start-lsn") { Description = "where the timeline's WAL begins", DefaultValueFactory = _ => "0/1000000" };
        var create = new Command("create", "create a timeline on every safekeeper") { tenant, timeline, startLsn };
        create.SetAction(result => CliRunner.RunAsync(async () =>
        {
            var state = CommonOptions.ClusterDir(result).Load();
            var tenantId = TimelineIds.Normalize(result.GetValue(tenant) ?? TimelineIds.New(), "--tenant");
            var timelineId = TimelineIds.Normalize(result.GetValue(timeline) ?? TimelineIds.New(), "--timeline");
            if (!Lsn.TryParse(result.GetValue(startLsn), out var start) || !start.IsValid)
                throw new CliError($"--start-lsn must look like 0/1000000, got '{result.GetValue(startLsn)}'");
            foreach (var sk in state.Safekeepers)
                await SafekeeperClient.CreateTimelineAsync(sk, tenantId, timelineId, start);
            Console.WriteLine($"tenant {tenantId} timeline {timelineId} start {start}");
            return 0;
        }));
        return new Command("timeline", "manage timelines") { create };
    }
}
