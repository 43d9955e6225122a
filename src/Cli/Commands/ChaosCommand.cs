using System.CommandLine;
using Storage.Cli.Chaos;

namespace Storage.Cli.Commands;

/// <summary>
/// `storagectl chaos --seed N --duration 5m [--faults K,..] [--heal-timeout 3m] [--json] [--dry-run]`: a seeded
/// Jepsen-style run against the running local cluster (see <see cref="ChaosRunner"/>). Exit code 0:
/// nothing lost or violated; 2: something was; 3: no violation but a fault never healed.
/// </summary>
public static class ChaosCommand
{
    private const int DryRunSteps = 20;

    public static Command Create()
    {
        var seed = new Option<int?>("--seed") { Description = "seed of the fault schedule (the same seed gives the same faults); default: a random one, printed" };
        var duration = new Option<string>("--duration") { Description = "how long to inject faults, e.g. 90s, 5m, 1h", DefaultValueFactory = _ => "5m" };
        var healTimeout = new Option<string>("--heal-timeout")
            { Description = "how long the cluster may take to serve again after a fault is healed (else it is reported)", DefaultValueFactory = _ => "3m" };
        var faults = new Option<string?>("--faults") { Description = $"only these fault kinds, comma-separated: {string.Join(", ", FaultKind.All.Select(k => k.Name))}" };
        var json = new Option<bool>("--json") { Description = "print the report as JSON on stdout (the timeline goes to stderr)" };
        var dryRun = new Option<bool>("--dry-run") { Description = $"print the first {DryRunSteps} steps of the schedule and exit (no cluster needed)" };
        var command = new Command("chaos",
            "run workloads through the proxy while killing and freezing components from a seeded schedule; report lost writes and violations")
            { seed, duration, healTimeout, faults, json, dryRun };
        command.SetAction((result, ct) => CliRunner.RunAsync(async () =>
        {
            var options = new ChaosOptions(
                result.GetValue(seed) ?? Random.Shared.Next(),
                DurationText.Parse(result.GetValue(duration)!, "--duration"),
                DurationText.Parse(result.GetValue(healTimeout)!, "--heal-timeout"),
                result.GetValue(faults) is { } list ? list.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(FaultKind.Parse).ToList() : null);
            if (result.GetValue(dryRun))
            {
                foreach (var step in new FaultSchedule(options.Seed, options.Kinds).Steps().Take(DryRunSteps)) Console.WriteLine(step);
                return 0;
            }
            var dir = CommonOptions.ClusterDir(result);
            var state = dir.Load();
            bool asJson = result.GetValue(json);
            var log = new ChaosLog(asJson ? Console.Error : Console.Out, new RunClock());
            var report = await new ChaosRunner(dir, state, options, log).RunAsync(ct);
            if (asJson) Console.WriteLine(ChaosReportView.ToJson(report));
            else ChaosReportView.Write(report);
            return report.ExitCode;
        }));
        return command;
    }
}
