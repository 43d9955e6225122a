using System.Text.Json;
using Spectre.Console;

namespace Storage.Cli.Chaos;

/// <summary>Prints a chaos report: tables for people, or JSON for scripts.</summary>
public static class ChaosReportView
{
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    public static string ToJson(ChaosReport report) => JsonSerializer.Serialize(report, Json);

    public static void Write(ChaosReport report)
    {
        var summary = new Table().Title($"chaos run, seed {report.Seed}").AddColumns("measure", "value");
        summary.AddRow("steps (faults injected)", $"{report.Steps} ({report.Faults.Sum(f => f.Injected)})");
        summary.AddRow("time (planned)", $"{report.ElapsedSeconds:0} s ({report.DurationSeconds:0} s)");
        summary.AddRow("writes tried", report.Tried.ToString());
        summary.AddRow("acknowledged", report.Acknowledged.ToString());
        summary.AddRow("failed", report.Failed.ToString());
        summary.AddRow("unknown (present / missing at the end)", $"{report.Unknown} ({report.UnknownPresent} / {report.UnknownMissing} log rows)");
        summary.AddRow("LOST (acknowledged, missing)", Flag(report.Lost));
        summary.AddRow("phantoms (failed, present)", Flag(report.Phantoms));
        summary.AddRow("bank violations", Flag(report.BankViolations));
        summary.AddRow("stale reads", Flag(report.StaleReads));
        summary.AddRow("faults that never healed", Flag(report.Unhealed));
        AnsiConsole.Write(summary);

        var workloads = new Table().AddColumns("workload", "tried", "acknowledged", "failed", "unknown");
        foreach (var w in report.Workloads)
            workloads.AddRow(w.Workload, w.Tried.ToString(), w.Acknowledged.ToString(), w.Failed.ToString(), w.Unknown.ToString());
        AnsiConsole.Write(workloads);

        var faults = new Table().AddColumns("fault", "injected", "acknowledged during", "lost", "longest without a commit", "never healed");
        foreach (var f in report.Faults)
            faults.AddRow(f.Kind, f.Injected.ToString(), f.AcknowledgedDuring.ToString(), Flag(f.Lost), $"{f.LongestUnavailableSeconds:0.0} s", Flag(f.Unhealed));
        AnsiConsole.Write(faults);

        foreach (var v in report.Violations) AnsiConsole.MarkupLine($"[red]{Markup.Escape(v)}[/]");
        AnsiConsole.MarkupLine(report.ExitCode switch
        {
            0 => "[green]no acknowledged write lost, no violation[/]",
            3 => "[yellow]no violation, but a fault never healed[/]",
            _ => "[red]VIOLATIONS: see above[/]",
        });
    }

    private static string Flag(int count) => count == 0 ? "0" : $"[red]{count}[/]";
}
