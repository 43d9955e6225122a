using Storage.Core;
using Storage.Proto.Safekeeper;
using Storage.Safekeeper.Consensus;

namespace Storage.Safekeeper.Tests.Consensus;

/// <summary>An acceptor refuses terms no honest proposer asks for, so one bad request cannot brick a timeline.</summary>
public class TermBoundsTests
{
    private static readonly Lsn Start = new(0x0100_0000);

    [Fact]
    public void A_vote_for_the_largest_term_is_refused_and_proposers_are_elected_after_it()
    {
        var sim = new ConsensusSimulation();
        var random = new Random(11);
        sim.Run(Enumerable.Range(0, 300).Select(_ => new SimStep(random.Next(16), random.Next(1000), random.Next(1000))));
        for (int a = 0; a < 3; a++)
        {
            var before = sim.Term(a);
            var refusal = Assert.Throws<AcceptorRefusal>(() => sim.RogueVote(a, ulong.MaxValue));
            Assert.Equal(RefusalKind.Invalid, refusal.Refusal);
            Assert.Contains("largest term", refusal.Message);
            Assert.Equal(before, sim.Term(a));
        }
        sim.CheckSafety(); // a fresh proposer is elected and commits
    }

    [Fact]
    public void A_vote_more_than_the_bound_above_the_current_term_is_refused_and_nothing_is_saved()
    {
        var storage = new MemoryAcceptorStorage(Start);
        var acceptor = new Acceptor(storage, 1, "az-a");
        Assert.True(acceptor.OnVoteRequest(new VoteRequest { Term = 5 }).VoteGiven);

        var refusal = Assert.Throws<AcceptorRefusal>(() => acceptor.OnVoteRequest(new VoteRequest { Term = 5 + Acceptor.MaxTermJump + 1 }));
        Assert.Equal(RefusalKind.Invalid, refusal.Refusal);
        Assert.Equal(5UL, refusal.AcceptorTerm);
        Assert.Equal(5UL, storage.State.Term);

        Assert.True(acceptor.OnVoteRequest(new VoteRequest { Term = 5 + Acceptor.MaxTermJump }).VoteGiven); // the bound itself is allowed
        Assert.Equal(5 + Acceptor.MaxTermJump, storage.State.Term);
    }

    [Fact]
    public void A_ProposerElected_of_an_absurd_term_is_refused()
    {
        var storage = new MemoryAcceptorStorage(Start);
        var acceptor = new Acceptor(storage, 1, "az-a");
        foreach (var term in new[] { ulong.MaxValue, Acceptor.MaxTermJump + 1 })
        {
            var elected = new ProposerElected { Term = term, StartStreamingAt = Start.Value };
            elected.TermHistory.Add(new TermEntry { Term = term, Lsn = Start.Value });
            Assert.Equal(RefusalKind.Invalid, Assert.Throws<AcceptorRefusal>(() => acceptor.OnElected(elected)).Refusal);
        }
        Assert.Equal(0UL, storage.State.Term);
        Assert.Equal(0, storage.State.History.Count);
    }
}
