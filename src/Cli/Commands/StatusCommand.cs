using System.CommandLine;
using System.Text.Json;
using Spectre.Console;

namespace Storage.Cli.Commands;

/// <summary>`storagectl status [--json]`: every process, and per timeline the LSNs of each safekeeper and pageserver.</summary>
public static class StatusCommand
{
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    public static Command Create()
    {
        var json = new Option<bool>("--json") { Description = "print the status as JSON, for scripts" };
        var command = new Command("status", "show the safekeepers, the pageservers, their timelines, the storage controller's placements, the proxy, its endpoints and compute VMs") { json };
        command.SetAction(result => CliRunner.RunAsync(async () =>
        {
            var state = CommonOptions.ClusterDir(result).Load();
            var safekeepers = ClusterReport.GatherAsync(state);
            var pageservers = ClusterReport.GatherPageserversAsync(state);
            var controlPlane = ClusterReport.GatherControlPlaneAsync(state);
            var controller = ClusterReport.GatherControllerAsync(state);
            if (result.GetValue(json))
            {
                var cp = await controlPlane;
                Console.WriteLine(JsonSerializer.Serialize(new
                {
                    state.TenantId, state.TimelineId, Safekeepers = await safekeepers, Pageservers = await pageservers, Controller = await controller,
                    cp.Proxy, cp.Endpoints, cp.Vms,
                }, Json));
            }
            else
            {
                AnsiConsole.Write(Table(await safekeepers));
                AnsiConsole.Write(Table(await pageservers, state));
                if (await controller is { } c) AnsiConsole.Write(Table(c));
                var cp = await controlPlane;
                AnsiConsole.Write(Table(cp.Proxy));
                AnsiConsole.Write(Table(cp.Endpoints));
                AnsiConsole.Write(Table(cp.Vms));
            }
            return 0;
        }));
        return command;
    }

    private static Table Table(ControllerReport r)
    {
        var table = new Table().AddColumns("name", "pid", "state", "address", "pageservers online", "failovers", "tenant/timeline", "attached", "secondary", "generation");
        var health = Health(r.Alive, r.Reachable);
        var online = r.Reachable ? string.Join(", ", r.OnlinePageservers) : Markup.Escape(r.Error ?? "");
        if (r.Placements.Count == 0) table.AddRow("controller", r.Pid?.ToString() ?? "-", health, r.Address, online, r.Failovers.ToString(), "", "", "", "");
        foreach (var p in r.Placements)
            table.AddRow("controller", r.Pid?.ToString() ?? "-", health, r.Address, online, r.Failovers.ToString(), Short(p.TenantId, p.TimelineId),
                p.Attached, p.Secondary is "" ? "-" : p.Secondary, p.Generation.ToString());
        return table;
    }

    private static Table Table(ProxyReport r)
    {
        var table = new Table().AddColumns("name", "pid", "state", "PostgreSQL (clients)", "admin API", "error");
        table.AddRow("proxy", r.Pid?.ToString() ?? "-", Health(r.Alive, r.Reachable), r.PostgresAddress, r.AdminAddress, Markup.Escape(r.Error ?? ""));
        return table;
    }

    private static Table Table(IReadOnlyList<EndpointReport> reports)
    {
        var table = new Table().AddColumns("endpoint", "tenant/timeline", "state", "VM", "compute address", "sessions", "suspend after");
        foreach (var e in reports)
        {
            var state = e.State == "attached" ? "[green]attached[/]" : Markup.Escape(e.State);
            table.AddRow(Markup.Escape(e.Id), Short(e.TenantId, e.TimelineId), state, e.Vm ?? "-", e.Address ?? "-", e.Sessions.ToString(), $"{e.SuspendTimeoutSeconds:0} s");
        }
        return table;
    }

    private static Table Table(IReadOnlyList<ComputeReport> reports)
    {
        var table = new Table().AddColumns("VM", "pid", "pool", "agent", "endpoint", "postgres", "term", "start LSN", "streamed LSN", "commit LSN", "image", "restarts", "reason");
        foreach (var r in reports)
        {
            var state = r.State switch { "Running" => "[green]running[/]", "Idle" => "idle", _ => $"[red]{Markup.Escape(r.State.ToLowerInvariant())}[/]" };
            var postgres = r.PostgresPid != 0 ? $"pid {r.PostgresPid} :{r.PostgresPort}" : "-";
            table.AddRow(r.Name, r.Pid?.ToString() ?? "-", r.PoolState, state, r.Endpoint, postgres, r.Term.ToString(), r.StartLsn, r.StreamedLsn, r.CommitLsn,
                r.Image.Length > 0 ? r.Image : "-", r.RestartCount.ToString(), Markup.Escape(r.Error ?? r.Reason));
        }
        return table;
    }

    private static Table Table(IReadOnlyList<SafekeeperReport> reports)
    {
        var table = new Table().AddColumns("name", "az", "pid", "state", "address", "tenant/timeline", "term", "flush LSN", "commit LSN", "backup LSN",
            "remote consistent", "local start");
        foreach (var r in reports)
        {
            var health = Health(r.Alive, r.Reachable);
            var pid = r.Pid?.ToString() ?? "-";
            if (r.Timelines.Count == 0)
                table.AddRow(r.Name, r.AvailabilityZone, pid, health, r.Address, Markup.Escape(r.Error ?? "no timelines"), "", "", "", "", "", "");
            foreach (var t in r.Timelines)
                table.AddRow(r.Name, r.AvailabilityZone, pid, health, r.Address, Short(t.TenantId, t.TimelineId), t.Term.ToString(),
                    t.FlushLsn, t.CommitLsn, t.BackupLsn, t.RemoteConsistentLsn, t.LocalStartLsn);
        }
        return table;
    }

    private static Table Table(IReadOnlyList<PageserverReport> reports, ClusterState state)
    {
        // Two-line headers: twelve columns must fit the 160 columns of piped output.
        var table = new Table().AddColumns("name", "pid", "state", "address", "tenant/timeline", "ingested\nLSN", "sk commit\nLSN", "remote\nconsistent",
            "images\n(latest)", "oldest\nbasebackup", "mode\n(gen)", "WAL\nsource");
        foreach (var r in reports)
        {
            var health = Health(r.Alive, r.Reachable);
            var pid = r.Pid?.ToString() ?? "-";
            if (r.Timelines.Count == 0)
                table.AddRow(r.Name, pid, health, r.Address, Markup.Escape(r.Error ?? "no timelines"), "", "", "", "", "", "", "");
            foreach (var t in r.Timelines)
                table.AddRow(r.Name, pid, health, r.Address, Short(t.TenantId, t.TimelineId), t.IngestedLsn, t.SafekeeperCommitLsn, t.RemoteConsistentLsn,
                    $"{t.ImageCount} ({t.LatestImageLsn})", t.OldestBasebackupLsn, t.Mode == "attached" ? $"attached\n({t.Generation})" : t.Mode,
                    Markup.Escape(SafekeeperName(t.WalSource, state)));
        }
        return table;
    }

    /// <summary>"sk1" for the address of sk1: shorter than the URI the pageserver reports.</summary>
    private static string SafekeeperName(string walSource, ClusterState state) =>
        walSource is "" ? "-"
        : Uri.TryCreate(walSource, UriKind.Absolute, out var uri) && state.Safekeepers.FirstOrDefault(s => s.Uri == uri) is { } sk ? sk.Name
        : walSource;

    private static string Health(bool alive, bool reachable) => reachable ? "[green]up[/]" : alive ? "[yellow]unreachable[/]" : "[red]down[/]";

    private static string Short(string tenantId, string timelineId) => $"{tenantId[..8]}/{timelineId[..8]}";
}
