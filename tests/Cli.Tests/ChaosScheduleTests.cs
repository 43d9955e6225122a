using Storage.Cli.Chaos;

namespace Storage.Cli.Tests;

/// <summary>The fault schedule of `storagectl chaos`: a function of the seed alone, reaching every kind of fault.</summary>
public sealed class ChaosScheduleTests
{
    private static List<string> Describe(FaultSchedule schedule, int steps) => schedule.Steps().Take(steps).Select(s => s.ToString()).ToList();

    [Fact]
    public void The_same_seed_gives_the_same_schedule_and_another_seed_another()
    {
        var first = Describe(new FaultSchedule(42), 100);
        Assert.Equal(first, Describe(new FaultSchedule(42), 100));
        Assert.NotEqual(first, Describe(new FaultSchedule(43), 100));
        Assert.Equal(Enumerable.Range(1, 100), new FaultSchedule(42).Steps().Take(100).Select(s => s.Number));
    }

    [Fact]
    public void Every_kind_is_reachable_alone_and_beside_another()
    {
        var steps = new FaultSchedule(7).Steps().Take(1000).ToList();
        var kinds = steps.SelectMany(s => s.Faults).Select(f => f.Kind).ToHashSet();
        Assert.Equal(FaultKind.All.ToHashSet(), kinds);
        Assert.Contains(steps, s => s.Faults.Count == 1);
        Assert.Contains(steps, s => s.Faults.Count == 2);
        // Every kind of every seed in a small range reaches each kind well within a long run's steps.
        foreach (var seed in Enumerable.Range(0, 20))
            Assert.Equal(FaultKind.All.Count, new FaultSchedule(seed).Steps().Take(300).SelectMany(s => s.Faults).Select(f => f.Kind).Distinct().Count());
    }

    [Fact]
    public void Faults_of_one_step_hit_different_parts_overlap_and_last_as_their_kind_says()
    {
        foreach (var step in new FaultSchedule(3).Steps().Take(1000))
        {
            Assert.InRange(step.Faults.Count, 1, 2);
            Assert.Equal(step.Faults.Count, step.Faults.Select(f => f.Kind.Group).Distinct().Count());
            Assert.InRange(step.QuietAfter, TimeSpan.FromSeconds(3), TimeSpan.FromSeconds(10));
            // The first starts the step; a second starts while the first is in effect.
            Assert.Equal(TimeSpan.Zero, step.Faults[0].Delay);
            if (step.Faults.Count == 2) Assert.InRange(step.Faults[1].Delay, TimeSpan.Zero, TimeSpan.FromSeconds(Math.Max(5, step.Faults[0].Hold.TotalSeconds)));
            foreach (var fault in step.Faults)
            {
                Assert.InRange(fault.Hold, fault.Kind.HoldRange.Min, fault.Kind.HoldRange.Max);
                Assert.Equal(fault.Kind.SafekeeperCount, fault.Safekeepers.Count);
                Assert.Equal(fault.Safekeepers.Count, fault.Safekeepers.Distinct().Count());
                Assert.All(fault.Safekeepers, sk => Assert.InRange(sk, 1, 3));
            }
        }
    }

    [Fact]
    public void A_frozen_vm_or_pageserver_stays_frozen_longer_than_its_watchers_timeout()
    {
        foreach (var kind in FaultKind.All.Where(k => k.Action == FaultAction.Stop && k.Target is FaultTarget.Vm or FaultTarget.AttachedPageserver or FaultTarget.SecondaryPageserver))
            Assert.True(kind.HoldRange.Min > FaultKind.WatchedFailureTimeout, kind.Name);
        // The control plane's components are never restarted by hand; everything else that is killed is.
        Assert.Equal(["kill-postgres", "kill-vm"], FaultKind.All.Where(k => k.Action == FaultAction.Kill && !k.RestartedByHand).Select(k => k.Name).Order());
    }

    [Fact]
    public void A_schedule_restricted_to_some_kinds_draws_only_those()
    {
        var kinds = new[] { FaultKind.Parse("kill-two-safekeepers"), FaultKind.Parse("STOP-VM") };
        var drawn = new FaultSchedule(1, kinds).Steps().Take(200).SelectMany(s => s.Faults).Select(f => f.Kind).ToHashSet();
        Assert.Equal(kinds.ToHashSet(), drawn);
        Assert.Contains("kill-two-safekeepers", Assert.Throws<CliError>(() => FaultKind.Parse("kill-everything")).Message);
        Assert.Throws<CliError>(() => new FaultSchedule(1, []));
    }

    [Theory]
    [InlineData("90s", 90)]
    [InlineData("5m", 300)]
    [InlineData("1h", 3600)]
    [InlineData("1m30s", 90)]
    [InlineData("2.5m", 150)]
    [InlineData("45", 45)]
    public void Durations_read_as_people_write_them(string text, double seconds) =>
        Assert.Equal(TimeSpan.FromSeconds(seconds), DurationText.Parse(text, "--duration"));

    [Theory]
    [InlineData("")]
    [InlineData("five minutes")]
    [InlineData("0s")]
    [InlineData("-5m")]
    public void A_bad_duration_is_a_clear_error(string text) =>
        Assert.Contains("--duration", Assert.Throws<CliError>(() => DurationText.Parse(text, "--duration")).Message);
}
