namespace Storage.Cli.Chaos;

/// <summary>
/// One fault of a step: its kind, the safekeepers it hits (sk numbers, for safekeeper kinds), how long
/// after the step starts it is injected, and how long it lasts.
/// </summary>
public sealed record FaultSpec(FaultKind Kind, IReadOnlyList<int> Safekeepers, TimeSpan Hold, TimeSpan Delay = default)
{
    public override string ToString()
    {
        var targets = Kind.SafekeeperCount is > 0 and < 3 ? $" ({string.Join(", ", Safekeepers.Select(s => $"sk{s}"))})" : "";
        var delay = Delay > TimeSpan.Zero ? $" after {Delay.TotalSeconds:0.0} s" : "";
        var hold = Hold > TimeSpan.Zero ? $" for {Hold.TotalSeconds:0.0} s" : "";
        return Kind.Name + targets + delay + hold;
    }
}

/// <summary>One or two faults injected together, then the quiet time after the cluster is healthy again.</summary>
public sealed record FaultStep(int Number, IReadOnlyList<FaultSpec> Faults, TimeSpan QuietAfter)
{
    public override string ToString() => $"step {Number}: {string.Join(" + ", Faults)}, then {QuietAfter.TotalSeconds:0.0} s quiet";
}

/// <summary>
/// The faults of a run, drawn from a <see cref="Random"/> seeded by the run's seed and nothing else:
/// the same seed gives the same steps (what the cluster does in between cannot change them; a role
/// such as "the attached pageserver" is resolved when the fault is injected).
/// </summary>
public sealed class FaultSchedule
{
    /// <summary>How often a step injects two faults at once instead of one.</summary>
    private const double TwoFaultsChance = 0.3;
    private static readonly (TimeSpan Min, TimeSpan Max) Quiet = (TimeSpan.FromSeconds(3), TimeSpan.FromSeconds(10));
    /// <summary>The latest a second fault starts after a first that is over at once (a kill the control plane recovers from).</summary>
    private static readonly TimeSpan MinOverlap = TimeSpan.FromSeconds(5);

    private readonly int _seed;
    private readonly IReadOnlyList<FaultKind> _kinds;

    /// <param name="kinds">The kinds to draw from; null: every kind.</param>
    public FaultSchedule(int seed, IReadOnlyList<FaultKind>? kinds = null)
    {
        _seed = seed;
        _kinds = kinds ?? FaultKind.All;
        if (_kinds.Count == 0) throw new CliError("a chaos run needs at least one fault kind");
    }

    /// <summary>The steps, without end; a run takes as many as fit its duration.</summary>
    public IEnumerable<FaultStep> Steps()
    {
        var random = new Random(_seed);
        for (int number = 1; ; number++) yield return NextStep(random, number);
    }

    private FaultStep NextStep(Random random, int number)
    {
        var first = _kinds[random.Next(_kinds.Count)];
        var faults = new List<FaultSpec> { Spec(random, first) };
        var others = _kinds.Where(k => k.Group != first.Group).ToList();
        if (random.NextDouble() < TwoFaultsChance && others.Count > 0)
        {
            // The second starts while the first is in effect (e.g. a compute dies while two safekeepers are down).
            var second = Spec(random, others[random.Next(others.Count)]);
            var latest = faults[0].Hold > MinOverlap ? faults[0].Hold : MinOverlap;
            faults.Add(second with { Delay = Between(random, (TimeSpan.Zero, latest)) });
        }
        return new FaultStep(number, faults, Between(random, Quiet));
    }

    private static FaultSpec Spec(Random random, FaultKind kind)
    {
        var safekeepers = new List<int> { 1, 2, 3 };
        if (kind.SafekeeperCount == 0) safekeepers.Clear();
        while (safekeepers.Count > kind.SafekeeperCount) safekeepers.RemoveAt(random.Next(safekeepers.Count));
        return new FaultSpec(kind, safekeepers, Between(random, kind.HoldRange));
    }

    /// <summary>A duration in [min, max], to a tenth of a second (as it is printed).</summary>
    private static TimeSpan Between(Random random, (TimeSpan Min, TimeSpan Max) range) =>
        TimeSpan.FromSeconds(Math.Round((range.Min + (range.Max - range.Min) * random.NextDouble()).TotalSeconds, 1));
}
