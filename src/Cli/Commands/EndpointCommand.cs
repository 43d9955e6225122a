using System.CommandLine;
using Spectre.Console;
using Storage.ComputeProxy.ControlPlane;
using Storage.Core.Api;

namespace Storage.Cli.Commands;

/// <summary>`storagectl endpoint create|list|suspend`: endpoints in the control plane, through its admin API.</summary>
public static class EndpointCommand
{
    public static Command Create() => new("endpoint", "manage endpoints (what clients connect to through the proxy)")
        { CreateCommand(), ListCommand(), SuspendCommand() };

    private static Command CreateCommand()
    {
        var id = new Argument<string>("id") { Description = "endpoint id, a short name like ep-analytics" };
        // Required: the default timeline is served by endpoint main, and two computes on one timeline fence each other.
        var timeline = new Option<string>("--timeline") { Description = "timeline the endpoint serves, 32 hex characters (one endpoint per timeline)", Required = true };
        var command = new Command("create", "register an endpoint (woken on its first connection) and print its connection string") { id, timeline };
        command.SetAction((result, ct) => WithAdmin(result, async (state, admin) =>
        {
            var endpoint = new EndpointEntry { Id = result.GetValue(id)!, RoleName = "app", Password = ClusterState.NewPassword() };
            var timelineId = TimelineIds.Normalize(result.GetValue(timeline), "--timeline");
            if ((await admin.StatusAsync(ct)).Endpoints.FirstOrDefault(e => e.TenantId == state.TenantId && e.TimelineId == timelineId) is { } other)
                throw new CliError($"endpoint {other.Id} already serves timeline {timelineId}; a timeline has one read-write endpoint (branch it: `storagectl branch create --from {timelineId}`)");
            await admin.CreateEndpointAsync(new AdminApi.CreateEndpointBody(endpoint.Id, state.TenantId, timelineId, endpoint.RoleName, endpoint.Password, null, null), ct);
            Console.Error.WriteLine($"created endpoint {endpoint.Id} on timeline {timelineId}; the first connection wakes it");
            Console.WriteLine(state.ConnectionStringFor(endpoint, endpointOption: true));
        }));
        return command;
    }

    private static Command ListCommand()
    {
        var command = new Command("list", "list the endpoints: timeline, state, VM, sessions");
        command.SetAction((result, ct) => WithAdmin(result, async (_, admin) =>
        {
            var table = new Table().AddColumns("endpoint", "tenant", "timeline", "state", "VM", "compute address", "sessions");
            foreach (var e in (await admin.StatusAsync(ct)).Endpoints.OrderBy(e => e.Id))
                table.AddRow(Markup.Escape(e.Id), e.TenantId, e.TimelineId, e.State, e.VmId ?? "-", e.Host is null ? "-" : $"{e.Host}:{e.Port}", e.Sessions.ToString());
            AnsiConsole.Write(table);
        }));
        return command;
    }

    private static Command SuspendCommand()
    {
        var id = new Argument<string>("id") { Description = "endpoint id" };
        var command = new Command("suspend", "detach an endpoint from its VM (the VM goes back to the pool; the next connection wakes it)") { id };
        command.SetAction((result, ct) => WithAdmin(result, async (_, admin) =>
        {
            var view = await admin.SuspendAsync(result.GetValue(id)!, ct);
            Console.WriteLine($"endpoint {view.Id} is {view.State}");
        }));
        return command;
    }

    private static Task<int> WithAdmin(ParseResult result, Func<ClusterState, AdminClient, Task> action) => CliRunner.RunAsync(async () =>
    {
        var state = CommonOptions.ClusterDir(result).Load();
        using var admin = new AdminClient(state.RequiredProxy);
        await action(state, admin);
        return 0;
    });
}
