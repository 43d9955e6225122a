namespace Storage.Cli.Chaos;

/// <summary>Turns a run's history, faults and checker verdicts into the report: counts, per-fault-kind impact, violations spelled out.</summary>
public static class ChaosReportBuilder
{
    public static ChaosReport Build(int seed, TimeSpan duration, TimeSpan runEnd, IReadOnlyList<Operation> history, IReadOnlyList<FaultRecord> faults,
        LogVerdict log, IReadOnlyList<Operation> bankViolations, IReadOnlyList<StaleRead> staleReads)
    {
        var writes = history.Where(o => o.IsWrite).ToList();
        var workloads = history.GroupBy(o => o.Workload).OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => new WorkloadStats(g.Key, g.Count(), Count(g, OpOutcome.Ok), Count(g, OpOutcome.Failed), Count(g, OpOutcome.Unknown)))
            .ToList();
        var injected = faults.Where(f => f.Injected).ToList();
        return new ChaosReport(seed, duration.TotalSeconds, runEnd.TotalSeconds, faults.Select(f => f.Step).Distinct().Count(),
            writes.Count, Count(writes, OpOutcome.Ok), Count(writes, OpOutcome.Failed), Count(writes, OpOutcome.Unknown),
            log.Lost.Count, log.Phantoms.Count, log.UnknownPresent, log.UnknownMissing, bankViolations.Count, staleReads.Count,
            injected.Count(f => f.Unhealed),
            workloads, FaultImpact.PerKind(injected, writes, log.Lost, runEnd),
            faults.Select(f => new FaultEvent(f.Step, f.Spec.Kind.Name, f.Spec.ToString(), f.Targets, Seconds(f.InjectedAt), Seconds(f.HealedAt),
                Seconds(f.HealthyAt), f.Problem)).ToList(),
            Violations(log, bankViolations, staleReads, injected, runEnd));
    }

    private static List<string> Violations(LogVerdict log, IReadOnlyList<Operation> bank, IReadOnlyList<StaleRead> stale, IReadOnlyList<FaultRecord> faults, TimeSpan runEnd)
    {
        var lines = new List<string>();
        lines.AddRange(log.Lost.Select(o => $"LOST {o.Workload} id {o.Key}, acknowledged at {ChaosLog.Stamp(o.End)}{Blame(FaultImpact.Blamed(o, faults, runEnd))}"));
        lines.AddRange(log.Phantoms.Select(o => $"PHANTOM {o.Workload} id {o.Key} failed at {ChaosLog.Stamp(o.End)} ({o.Error}) but is in the table"));
        lines.AddRange(bank.Select(o => $"BANK read at {ChaosLog.Stamp(o.Start)} saw {o.Key} accounts totalling {o.Value}, expected {BankWorkload.Accounts} totalling {BankWorkload.Total}"));
        lines.AddRange(stale.Select(s => $"STALE register read at {ChaosLog.Stamp(s.Read.Start)} returned {s.Read.Value}; {s.LastAcknowledgedWrite.Value} was acknowledged at {ChaosLog.Stamp(s.LastAcknowledgedWrite.End)}"));
        return lines.Take(ChaosReport.MaxListed).ToList();
    }

    private static string Blame(IReadOnlyList<FaultRecord> faults) =>
        faults.Count == 0 ? "" : $" (during or before: {string.Join(", ", faults.Select(f => $"step {f.Step} {f.Spec.Kind.Name} on {f.Targets}"))})";

    private static int Count(IEnumerable<Operation> ops, OpOutcome outcome) => ops.Count(o => o.Outcome == outcome);

    private static double? Seconds(TimeSpan? t) => t is { } v ? Math.Round(v.TotalSeconds, 1) : null;
}
