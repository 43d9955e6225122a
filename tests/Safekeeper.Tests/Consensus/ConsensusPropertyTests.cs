using FsCheck;
using FsCheck.Fluent;

namespace Storage.Safekeeper.Tests.Consensus;

public class ConsensusPropertyTests
{
    private static readonly Arbitrary<SimStep[]> Schedules =
        Gen.ArrayOf(
            Gen.Choose(0, 15).SelectMany(kind => Gen.Choose(0, 1000).SelectMany(a => Gen.Choose(0, 1000).Select(b => new SimStep(kind, a, b)))),
            600).ToArbitrary();

    [Fact]
    public void Competing_proposers_never_commit_different_prefixes_nor_lose_a_commit()
    {
        var property = Prop.ForAll(Schedules, steps =>
        {
            var sim = new ConsensusSimulation();
            sim.Run(steps);
            sim.CheckSafety();
        });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(400), property);
    }

    [Fact]
    public void Random_schedules_do_reach_elections_and_commits()
    {
        // Guards the property above against testing nothing: the schedules must exercise commits
        // and more than one election (competition) often.
        var random = new Random(42);
        int withCommits = 0, withCompetition = 0;
        for (int run = 0; run < 200; run++)
        {
            var steps = Enumerable.Range(0, 600).Select(_ => new SimStep(random.Next(16), random.Next(1000), random.Next(1000))).ToArray();
            var sim = new ConsensusSimulation();
            sim.Run(steps);
            if (sim.CommittedPrefixes.Count > 0) withCommits++;
            if (sim.Elections > 1) withCompetition++;
            sim.CheckSafety();
        }
        Assert.True(withCommits > 60, $"{withCompetition} competing; only {withCommits} of 200 runs committed anything");
        Assert.True(withCompetition > 40, $"only {withCompetition} of 200 runs had more than one election");
    }
}
