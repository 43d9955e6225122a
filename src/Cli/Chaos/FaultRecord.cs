namespace Storage.Cli.Chaos;

/// <summary>One fault as it happened, on the run's clock: injected, healed (restarted or continued), cluster healthy again.</summary>
public sealed class FaultRecord(int step, FaultSpec spec)
{
    public int Step { get; } = step;
    public FaultSpec Spec { get; } = spec;
    /// <summary>What it hit, e.g. "sk1 (pid 123), sk3 (pid 456)".</summary>
    public string Targets { get; set; } = "";
    public TimeSpan? InjectedAt { get; set; }
    public TimeSpan? HealedAt { get; set; }
    public TimeSpan? HealthyAt { get; set; }
    /// <summary>Why it was not injected, or what was still wrong when the cluster did not heal in time.</summary>
    public string? Problem { get; set; }

    public bool Injected => InjectedAt is not null;
    public bool Unhealed => Injected && HealthyAt is null;

    /// <summary>From injection until the cluster was healthy again (or the end of the run).</summary>
    public bool Covers(TimeSpan at, TimeSpan runEnd) => InjectedAt is { } from && at >= from && at <= (HealthyAt ?? runEnd);
}
