using System.CommandLine;
using System.Text.Json;
using Spectre.Console;

namespace Storage.Cli.Commands;

/// <summary>`storagectl status [--json]`: processes and per-timeline term / flush / commit LSN of each safekeeper.</summary>
public static class StatusCommand
{
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    public static Command Create()
    {
        var json = new Option<bool>("--json") { Description = "print the status as JSON, for scripts" };
        var command = new Command("status", "show the safekeepers, their timelines, and the compute VMs") { json };
        command.SetAction(result => CliRunner.RunAsync(async () =>
        {
            var state = CommonOptions.ClusterDir(result).Load();
            var reports = await ClusterReport.GatherAsync(state);
            var computes = await ClusterReport.GatherComputesAsync(state);
            if (result.GetValue(json))
                Console.WriteLine(JsonSerializer.Serialize(new { state.TenantId, state.TimelineId, Safekeepers = reports, Computes = computes }, Json));
            else
            {
                AnsiConsole.Write(Table(reports));
                AnsiConsole.Write(Table(computes));
            }
            return 0;
        }));
        return command;
    }

    private static Table Table(IReadOnlyList<ComputeReport> reports)
    {
        var table = new Table().AddColumns("name", "pid", "state", "endpoint", "postgres", "term", "start LSN", "streamed LSN", "commit LSN", "reason");
        foreach (var r in reports)
        {
            var state = r.State switch { "Running" => "[green]running[/]", "Idle" => "idle", _ => $"[red]{Markup.Escape(r.State.ToLowerInvariant())}[/]" };
            var postgres = r.PostgresPid != 0 ? $"pid {r.PostgresPid} :{r.PostgresPort}" : "-";
            table.AddRow(r.Name, r.Pid?.ToString() ?? "-", state, r.Endpoint, postgres, r.Term.ToString(), r.StartLsn, r.StreamedLsn, r.CommitLsn,
                Markup.Escape(r.Error ?? r.Reason));
        }
        return table;
    }

    private static Table Table(IReadOnlyList<SafekeeperReport> reports)
    {
        var table = new Table().AddColumns("name", "az", "pid", "state", "address", "tenant/timeline", "term", "flush LSN", "commit LSN", "backup LSN");
        foreach (var r in reports)
        {
            var health = r.Reachable ? "[green]up[/]" : r.Alive ? "[yellow]unreachable[/]" : "[red]down[/]";
            var pid = r.Pid?.ToString() ?? "-";
            if (r.Timelines.Count == 0)
                table.AddRow(r.Name, r.AvailabilityZone, pid, health, r.Address, Markup.Escape(r.Error ?? "no timelines"), "", "", "", "");
            foreach (var t in r.Timelines)
                table.AddRow(r.Name, r.AvailabilityZone, pid, health, r.Address, $"{t.TenantId[..8]}/{t.TimelineId[..8]}", t.Term.ToString(), t.FlushLsn, t.CommitLsn, t.BackupLsn);
        }
        return table;
    }
}
