using System.Text.Json;
using Storage.Cli.Chaos;
using Storage.Core.Postgres;

namespace Storage.Cli.Tests;

/// <summary>
/// A short seeded `storagectl chaos` run against a cluster of its own: two minutes of faults under the
/// workloads, and nothing acknowledged may be lost, no bank read may see another total, no read may
/// be stale, every fault must heal. Alone (no other test's cluster beside it): its faults are timed.
/// </summary>
[Collection(nameof(ChaosTests))]
public sealed class ChaosTests
{
    /// <summary>
    /// Its first steps mix most parts of the cluster: a VM killed with the proxy killed during the
    /// reattach, PostgreSQL frozen, PostgreSQL killed with the attached pageserver killed during its
    /// restart, a VM frozen past its timeout while a safekeeper dies, the secondary pageserver killed,
    /// the controller and the secondary frozen together (`storagectl chaos --seed 9 --dry-run`).
    /// </summary>
    private const int Seed = 9;

    [Fact]
    public async Task A_seeded_two_minute_run_loses_no_acknowledged_write_and_sees_no_violation()
    {
        var ctl = new StorageCtl();
        try
        {
            var up = await ctl.UpAsync();
            Assert.True(up.ExitCode == 0, up.ToString());

            var run = await ctl.RunAsync(TimeSpan.FromMinutes(15), "chaos", "--seed", Seed.ToString(), "--duration", "2m", "--json");
            Assert.True(run.Stdout.TrimStart().StartsWith('{'), run.ToString());
            var report = JsonSerializer.Deserialize<ChaosReport>(run.Stdout, new JsonSerializerOptions(JsonSerializerDefaults.Web))!;
            var what = $"{run}\n{string.Join('\n', report.Violations)}";

            Assert.True(report.Lost == 0, $"acknowledged writes lost: {what}");
            Assert.True(report.Phantoms == 0, $"failed writes present: {what}");
            Assert.True(report.BankViolations == 0, $"bank totals broken: {what}");
            Assert.True(report.StaleReads == 0, $"stale reads: {what}");
            Assert.True(report.Unhealed == 0, $"a fault never healed: {what}");
            Assert.True(run.ExitCode == 0, what);
            // It did run: faults were injected and writes acknowledged around them, on every workload.
            Assert.True(report.Steps >= 2 && report.Faults.Sum(f => f.Injected) >= 2, what);
            Assert.Equal(Describe(new FaultSchedule(Seed).Steps().Take(report.Steps)), report.Schedule.GroupBy(e => e.Step).Select(g => g.Select(e => e.Spec).ToList()));
            Assert.All(report.Workloads, w => Assert.True(w.Acknowledged > 0, $"{w.Workload}: {what}"));
            Assert.Contains("step 1: kill-vm + kill-proxy", run.Stderr); // the timeline, as it happened
        }
        finally
        {
            // Nothing stays frozen (were chaos itself cut short) or running: SIGCONT, `down`, then SIGKILL by PID.
            foreach (var pid in ctl.RecordedPids().OfType<int>().Concat(ctl.OwnedPids())) OsUser.Signal(pid, OsUser.SigCont);
            await ctl.DisposeAsync();
        }
    }

    private static IEnumerable<List<string>> Describe(IEnumerable<FaultStep> steps) => steps.Select(s => s.Faults.Select(f => f.ToString()).ToList());
}

/// <summary>Runs <see cref="ChaosTests"/> after the other tests of the assembly, not beside them.</summary>
[CollectionDefinition(nameof(ChaosTests), DisableParallelization = true)]
public sealed class ChaosTestsCollection;
