using System.CommandLine;
using Microsoft.Extensions.Logging.Abstractions;
using Storage.Core.Api;
using Storage.Core.Basebackup;
using Storage.Core.Postgres;

namespace Storage.Cli.Commands;

/// <summary>`storagectl timeline create`: a new timeline from initdb, known to all three safekeepers.</summary>
public static class TimelineCommand
{
    public static Command Create()
    {
        var tenant = new Option<string?>("--tenant") { Description = "tenant id, 32 hex characters (default: the cluster's)" };
        var timeline = new Option<string?>("--timeline") { Description = "timeline id, 32 hex characters (default: a new one)" };
        var create = new Command("create", "create a timeline: an initdb image, and the timeline on every safekeeper") { tenant, timeline };
        create.SetAction((result, ct) => CliRunner.RunAsync(async () =>
        {
            var dir = CommonOptions.ClusterDir(result);
            var state = dir.Load();
            var tenantId = TimelineIds.Normalize(result.GetValue(tenant) ?? state.TenantId, "--tenant");
            var timelineId = TimelineIds.Normalize(result.GetValue(timeline) ?? TimelineIds.New(), "--timeline");
            var image = await new TimelineBootstrap(PostgresBinaries.Locate(), new ImageStore(dir.ImageStore), NullLogger.Instance)
                .CreateAsync(tenantId, timelineId, state.Safekeepers.Select(s => s.Uri).ToList(), ct);
            Console.WriteLine($"tenant {tenantId} timeline {timelineId} start {image.EndLsn}");
            return 0;
        }));
        return new Command("timeline", "manage timelines") { create };
    }
}
