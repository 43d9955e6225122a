using System.CommandLine;
using System.Globalization;
using Spectre.Console;
using Storage.Core;
using Storage.Core.Api;
using Storage.Proto.Pageserver;

namespace Storage.Cli.Commands;

/// <summary>`storagectl timeline create|branch|list`: timelines through the storage controller and the attached pageserver (which tells the safekeepers).</summary>
public static class TimelineCommand
{
    public static Command Create()
    {
        var tenant = NewTenantOption();
        return new Command("timeline", "manage timelines") { tenant, CreateCommand(tenant), BranchCommand(tenant), ListCommand() };
    }

    private static Command CreateCommand(Option<string?> tenant)
    {
        var timeline = NewTimelineOption();
        var create = new Command("create", "create a timeline: initdb on the pageserver (its first image), and the timeline on every safekeeper") { timeline };
        create.SetAction((result, ct) => CliRunner.RunAsync(async () =>
        {
            var state = CommonOptions.ClusterDir(result).Load();
            var (tenantId, timelineId) = Ids(result, state, tenant, timeline);
            var info = await CreateOnPageserverAsync(state, tenantId, timelineId, ct);
            Console.WriteLine($"tenant {tenantId} timeline {timelineId} start {new Lsn(info.StartLsn)}");
            return 0;
        }));
        return create;
    }

    /// <summary>`storagectl branch create ...`: the name for `timeline branch`, same options.</summary>
    public static Command BranchAlias()
    {
        var tenant = NewTenantOption();
        return new Command("branch", "manage branches (timelines that start from another's state)") { tenant, BranchCommand(tenant, "create") };
    }

    private static Command BranchCommand(Option<string?> tenant, string name = "branch")
    {
        var timeline = NewTimelineOption();
        var from = new Option<string>("--from") { Description = "the ancestor timeline id", Required = true };
        var lsn = new Option<string?>("--lsn") { Description = "branch at this LSN of the ancestor (like 0/16B3748)" };
        var at = new Option<string?>("--at") { Description = "branch at the last commit at or before this ISO-8601 time (UTC unless it has an offset)" };
        var branch = new Command(name, "create a timeline that starts as another timeline's state at an LSN or a time (default: all it has ingested)")
            { from, lsn, at, timeline };
        branch.SetAction((result, ct) => CliRunner.RunAsync(async () =>
        {
            // Options first: a mistake is reported even without a running cluster.
            var ancestor = TimelineIds.Normalize(result.GetValue(from), "--from");
            var (ancestorLsn, time) = (result.GetValue(lsn), result.GetValue(at)) switch
            {
                ({ }, { }) => throw new CliError("give --lsn or --at, not both"),
                ({ } text, null) => (Lsn.TryParse(text, out var l) && l.IsValid ? l : throw new CliError($"--lsn: '{text}' is not an LSN (expected the form 0/16B3748)"), (DateTimeOffset?)null),
                (null, { } text) => (default(Lsn), ParseTime(text)),
                _ => (default(Lsn), null),
            };
            var state = CommonOptions.ClusterDir(result).Load();
            var (tenantId, timelineId) = Ids(result, state, tenant, timeline);
            var info = await CreateOnPageserverAsync(state, tenantId, timelineId, ct, ancestor, ancestorLsn, time);
            Console.WriteLine($"tenant {tenantId} timeline {timelineId} start {new Lsn(info.StartLsn)} (branch of {ancestor} at {new Lsn(info.AncestorLsn)})");
            return 0;
        }));
        return branch;
    }

    private static Command ListCommand()
    {
        var list = new Command("list", "list the pageserver's timelines: start LSN, ancestor and branch point, ingested LSN");
        list.SetAction((result, ct) => CliRunner.RunAsync(async () =>
        {
            var state = CommonOptions.ClusterDir(result).Load();
            var response = await ListOnPageserverAsync(state, ct,
                (name, e) => Console.Error.WriteLine($"warning: {name} could not list its timelines ({e.StatusCode}: {e.Status.Detail}); those it holds are missing below"));
            var table = new Table().AddColumns("tenant", "timeline", "start LSN", "ancestor@LSN", "ingested LSN");
            foreach (var t in response.Timelines.Select(PageserverTimelineReport.From).OrderBy(t => t.TenantId).ThenBy(t => t.AncestorTimelineId is not null))
            {
                var id = t.TimelineId == state.TimelineId ? $"{t.TimelineId} (default)" : t.TimelineId;
                table.AddRow(t.TenantId, id, t.StartLsn, t.Ancestor, t.IngestedLsn);
            }
            AnsiConsole.Write(table);
            return 0;
        }));
        return list;
    }

    /// <summary>
    /// The attached pageserver runs initdb (or branches), stores the first image and tells every
    /// safekeeper; with a storage controller, the controller picks that pageserver (and a secondary).
    /// </summary>
    public static async Task<TimelineInfo> CreateOnPageserverAsync(ClusterState state, string tenantId, string timelineId, CancellationToken ct,
        string? ancestor = null, Lsn ancestorLsn = default, DateTimeOffset? ancestorTime = null)
    {
        var request = new CreateTimelineRequest { Timeline = PageserverClient.Id(tenantId, timelineId), AncestorTimelineId = ancestor ?? "", AncestorLsn = ancestorLsn.Value };
        if (ancestorTime is { } t) request.AncestorTimestampMicros = (t - DateTimeOffset.UnixEpoch).Ticks / 10;
        request.Safekeepers.AddRange(state.Safekeepers.Select(s => s.Uri.ToString()));
        var what = $"create timeline {tenantId}/{timelineId}";
        if (state.Controller is not { } controller)
            return await CallAsync(state.Pageservers.FirstOrDefault() ?? throw new CliError("the cluster has no pageserver"), what, uri => PageserverClient.CreateTimelineAsync(uri, request, ct));
        var placement = await CallAsync(controller, what, uri => ControllerClient.CreateTimelineAsync(uri, request, ct));
        return await PageserverClient.GetTimelineAsync(new Uri(placement.AttachedAddress), tenantId, timelineId, ct: ct);
    }

    /// <summary>Whether the timeline exists: placed by the controller, or on a pageserver of a cluster without one.</summary>
    public static async Task<bool> ExistsAsync(ClusterState state, string tenantId, string timelineId, CancellationToken ct)
    {
        if (state.Controller is { } controller)
        {
            try { await ControllerClient.GetPlacementAsync(controller.Uri, tenantId, timelineId, ct: ct); return true; }
            catch (Grpc.Core.RpcException e) when (e.StatusCode == Grpc.Core.StatusCode.NotFound) { return false; }
            catch (Grpc.Core.RpcException e) { throw new CliError($"controller could not say where {tenantId}/{timelineId} is: {e.Status.Detail}"); }
        }
        var list = await ListOnPageserverAsync(state, ct);
        return list.Timelines.Any(t => t.Timeline.TenantId == tenantId && t.Timeline.TimelineId == timelineId);
    }

    /// <summary>Every timeline, as the pageserver it is attached to reports it; <paramref name="unreachable"/> hears of each pageserver that did not answer.</summary>
    public static async Task<ListTimelinesResponse> ListOnPageserverAsync(ClusterState state, CancellationToken ct,
        Action<string, Grpc.Core.RpcException>? unreachable = null)
    {
        var response = new ListTimelinesResponse();
        Grpc.Core.RpcException? failure = null;
        foreach (var pageserver in state.Pageservers)
        {
            try { response.Timelines.AddRange((await PageserverClient.ListTimelinesAsync(pageserver.Uri, ct: ct)).Timelines.Where(t => t.Mode == LocationMode.Attached)); }
            catch (Grpc.Core.RpcException e) { failure ??= e; unreachable?.Invoke(pageserver.Name, e); }
        }
        if (response.Timelines.Count == 0 && failure is not null)
            throw new CliError($"no pageserver could list timelines: {failure.Status.Detail}");
        return response;
    }

    /// <summary>Calls a component; a refusal becomes one line naming what was asked.</summary>
    private static async Task<T> CallAsync<T>(IProcessEntry component, string what, Func<Uri, Task<T>> call)
    {
        var uri = component switch { PageserverEntry ps => ps.Uri, ControllerEntry c => c.Uri, _ => throw new ArgumentException(component.Name) };
        try { return await call(uri); }
        catch (Grpc.Core.RpcException e)
        {
            var hint = e.StatusCode == Grpc.Core.StatusCode.Unavailable && !ClusterProcesses.IsRunning(component) ? $" (it is not running: `storagectl start {component.Name}`)" : "";
            throw new CliError($"{component.Name} could not {what}: {e.Status.Detail}{hint}");
        }
    }

    private static Option<string?> NewTenantOption() =>
        new("--tenant") { Description = "tenant id, 32 hex characters (default: the cluster's)", Recursive = true };

    private static Option<string?> NewTimelineOption() =>
        new("--timeline") { Description = "id of the new timeline, 32 hex characters (default: a new one)" };

    private static (string Tenant, string Timeline) Ids(ParseResult result, ClusterState state, Option<string?> tenant, Option<string?> timeline) =>
        (TimelineIds.Normalize(result.GetValue(tenant) ?? state.TenantId, "--tenant"),
         TimelineIds.Normalize(result.GetValue(timeline) ?? TimelineIds.New(), "--timeline"));

    private static DateTimeOffset ParseTime(string text) =>
        DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var time)
            ? time
            : throw new CliError($"--at: '{text}' is not an ISO-8601 time (like 2025-01-31T12:00:00Z)");
}
