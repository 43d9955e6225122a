namespace Storage.Cli.Chaos;

/// <summary>Counts of one workload's operations by outcome.</summary>
public sealed record WorkloadStats(string Workload, int Tried, int Acknowledged, int Failed, int Unknown);

/// <summary>
/// One kind of fault over the run: times injected, writes acknowledged while it was in effect (from
/// injection until healthy again), acknowledged log rows lost that it is blamed for, the longest time
/// without any acknowledged write while it was in effect, and how often the cluster did not heal.
/// </summary>
public sealed record FaultKindStats(string Kind, int Injected, int AcknowledgedDuring, int Lost, double LongestUnavailableSeconds, int Unhealed);

/// <summary>One fault of the schedule as it happened (times in seconds since the start).</summary>
public sealed record FaultEvent(int Step, string Kind, string Spec, string Targets, double? InjectedAt, double? HealedAt, double? HealthyAt, string? Problem);

/// <summary>
/// The verdict of a chaos run. Safe: nothing acknowledged was lost, nothing that failed appeared, no
/// bank read saw another total, no register read was stale. Exit code 0 when safe and every fault
/// healed, 2 when not safe, 3 when safe but a fault never healed.
/// </summary>
public sealed record ChaosReport(
    int Seed, double DurationSeconds, double ElapsedSeconds, int Steps,
    int Tried, int Acknowledged, int Failed, int Unknown,
    int Lost, int Phantoms, int UnknownPresent, int UnknownMissing, int BankViolations, int StaleReads, int Unhealed,
    IReadOnlyList<WorkloadStats> Workloads, IReadOnlyList<FaultKindStats> Faults, IReadOnlyList<FaultEvent> Schedule,
    IReadOnlyList<string> Violations)
{
    /// <summary>At most this many violations are spelled out (the counts hold them all).</summary>
    public const int MaxListed = 20;

    public bool Safe => Lost == 0 && Phantoms == 0 && BankViolations == 0 && StaleReads == 0;

    public int ExitCode => !Safe ? 2 : Unhealed > 0 ? 3 : 0;
}
