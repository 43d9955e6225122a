namespace Storage.Cli.Chaos;

/// <summary>What each fault did to the workloads: acknowledged writes while in effect, losses blamed on it, the longest stretch without a commit.</summary>
public static class FaultImpact
{
    public static IReadOnlyList<FaultKindStats> PerKind(IReadOnlyList<FaultRecord> faults, IReadOnlyList<Operation> writes, IReadOnlyList<Operation> lost, TimeSpan runEnd)
    {
        var acks = writes.Where(o => o.Outcome == OpOutcome.Ok).Select(o => o.End).Order().ToList();
        var blamed = lost.SelectMany(o => Blamed(o, faults, runEnd)).ToList();
        return faults.GroupBy(f => f.Spec.Kind.Name).OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => new FaultKindStats(
            g.Key,
            g.Count(),
            g.Sum(f => acks.Count(a => f.Covers(a, runEnd))),
            blamed.Count(f => f.Spec.Kind.Name == g.Key),
            Math.Round(g.Max(f => LongestWithoutAck(f, acks, runEnd).TotalSeconds), 1),
            g.Count(f => f.Unhealed))).ToList();
    }

    /// <summary>
    /// The faults a lost write is blamed on: the steps in effect when it was acknowledged, else the
    /// first step injected after it (an acknowledged write is lost by what happens to the cluster
    /// next). A step's faults are blamed together: a loss may need both (a compute dying while two
    /// safekeepers are down).
    /// </summary>
    public static IReadOnlyList<FaultRecord> Blamed(Operation op, IReadOnlyList<FaultRecord> faults, TimeSpan runEnd)
    {
        var steps = faults.Where(f => f.Covers(op.End, runEnd)).Select(f => f.Step).ToHashSet();
        if (steps.Count == 0 && faults.Where(f => f.InjectedAt > op.End).MinBy(f => f.InjectedAt) is { } next) steps.Add(next.Step);
        return faults.Where(f => f.Injected && steps.Contains(f.Step)).ToList();
    }

    /// <summary>
    /// The longest time without an acknowledged write from the fault's injection until the first
    /// acknowledgement after it was healthy again (or the end of the run). <paramref name="acks"/> is sorted.
    /// </summary>
    public static TimeSpan LongestWithoutAck(FaultRecord fault, IReadOnlyList<TimeSpan> acks, TimeSpan runEnd)
    {
        if (fault.InjectedAt is not { } from) return TimeSpan.Zero;
        var until = fault.HealthyAt ?? runEnd;
        var longest = TimeSpan.Zero;
        var previous = from;
        foreach (var ack in acks)
        {
            if (ack <= from) continue;
            if (ack - previous > longest) longest = ack - previous;
            previous = ack;
            if (ack >= until) return longest;
        }
        return runEnd - previous > longest ? runEnd - previous : longest;
    }
}
