namespace Storage.Cli.Chaos;

/// <summary>
/// The append log's verdict against the rows present at the end. Lost: acknowledged, missing.
/// Phantoms: certainly failed (never committed), yet present. Unknown ids may be either.
/// </summary>
public sealed record LogVerdict(IReadOnlyList<Operation> Lost, IReadOnlyList<Operation> Phantoms, int UnknownPresent, int UnknownMissing);

/// <summary>A read of the register older than a write acknowledged before the read began.</summary>
public sealed record StaleRead(Operation Read, Operation LastAcknowledgedWrite);

/// <summary>Judges a run's history: pure functions of the operations (and the final rows), so they are tested on made-up histories.</summary>
public static class HistoryChecker
{
    public static LogVerdict CheckLog(IEnumerable<Operation> history, IReadOnlySet<long> present)
    {
        var appends = history.Where(o => o.Kind == OpKind.Append).ToList();
        return new LogVerdict(
            appends.Where(o => o.Outcome == OpOutcome.Ok && !present.Contains(o.Key)).ToList(),
            appends.Where(o => o.Outcome == OpOutcome.Failed && present.Contains(o.Key)).ToList(),
            appends.Count(o => o.Outcome == OpOutcome.Unknown && present.Contains(o.Key)),
            appends.Count(o => o.Outcome == OpOutcome.Unknown && !present.Contains(o.Key)));
    }

    /// <summary>Bank reads that saw another number of accounts or another total than the fixed ones.</summary>
    public static IReadOnlyList<Operation> CheckBank(IEnumerable<Operation> history, int accounts, long total) =>
        history.Where(o => o.Workload == BankWorkload.ReadName && o.Outcome == OpOutcome.Ok && (o.Key != accounts || o.Value != total)).ToList();

    /// <summary>
    /// Register reads (on new connections or long-lived sessions through the proxy) that returned less than the value
    /// of a write acknowledged before the read started. The writer writes increasing values, so the
    /// newest acknowledged write before a read is the highest value such a read may not go below.
    /// </summary>
    public static IReadOnlyList<StaleRead> CheckRegister(IEnumerable<Operation> history)
    {
        var ops = history.Where(o => o.Workload is RegisterWorkload.WriteName or RegisterWorkload.ReadName or RegisterWorkload.SessionReadName).ToList();
        var writes = ops.Where(o => o.Kind == OpKind.Write && o.Outcome == OpOutcome.Ok).OrderBy(o => o.End).ToList();
        var reads = ops.Where(o => o.Kind == OpKind.Read && o.Outcome == OpOutcome.Ok).OrderBy(o => o.Start);
        var stale = new List<StaleRead>();
        Operation? newest = null;
        int next = 0;
        foreach (var read in reads)
        {
            for (; next < writes.Count && writes[next].End < read.Start; next++)
                if (newest is null || writes[next].Value > newest.Value) newest = writes[next];
            if (newest is not null && read.Value < newest.Value) stale.Add(new StaleRead(read, newest));
        }
        return stale;
    }
}
