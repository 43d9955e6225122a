using Storage.Core;
using Storage.Core.Consensus;
using Storage.Proto.Safekeeper;
using Storage.Safekeeper.Consensus;

namespace Storage.Safekeeper.Tests.Consensus;

/// <summary>An acceptor starts its WAL later only at committed WAL, and only for its elected proposer.</summary>
public class StartWalAtTests
{
    private static readonly Lsn Start = new(0x0100_0000);

    private static (Acceptor, MemoryAcceptorStorage) Elected(ulong term)
    {
        var storage = new MemoryAcceptorStorage(Start);
        var acceptor = new Acceptor(storage, 1, "az-a");
        acceptor.OnVoteRequest(new VoteRequest { Term = term });
        var elected = new ProposerElected { Term = term, StartStreamingAt = Start.Value };
        elected.TermHistory.Add(new TermEntry { Term = term, Lsn = Start.Value });
        acceptor.OnElected(elected);
        return (acceptor, storage);
    }

    [Fact]
    public void Starts_later_at_a_committed_lsn_and_takes_appends_from_there()
    {
        var (acceptor, storage) = Elected(2);
        var later = new Lsn(0x0500_0000);
        acceptor.OnStartWalAt(new StartWalAt { Term = 2, Lsn = later.Value, CommitLsn = later.Value + 100 });
        Assert.Equal(later, acceptor.FlushLsn);
        Assert.Equal(later, acceptor.LocalStartLsn);
        Assert.Equal(later, storage.State.LocalStartLsn);
        Assert.True(acceptor.CommitLsn >= later);
        acceptor.OnAppend(new AppendRequest { Term = 2, BeginLsn = later.Value, EndLsn = later.Value + 3, WalData = Google.Protobuf.ByteString.CopyFrom(1, 2, 3) });
        Assert.Equal(later + 3UL, acceptor.WriteLsn);
    }

    [Fact]
    public void Refuses_uncommitted_wal_and_other_terms()
    {
        var (acceptor, _) = Elected(2);
        var refusal = Assert.Throws<AcceptorRefusal>(() => acceptor.OnStartWalAt(new StartWalAt { Term = 2, Lsn = 0x0500_0000, CommitLsn = 0x0400_0000 }));
        Assert.Equal(RefusalKind.Invalid, refusal.Refusal);
        Assert.Equal(RefusalKind.Superseded, Assert.Throws<AcceptorRefusal>(() => acceptor.OnStartWalAt(new StartWalAt { Term = 1, Lsn = 0x0500_0000, CommitLsn = 0x0500_0000 })).Refusal);
        Assert.Equal(RefusalKind.OutOfOrder, Assert.Throws<AcceptorRefusal>(() => acceptor.OnStartWalAt(new StartWalAt { Term = 3, Lsn = 0x0500_0000, CommitLsn = 0x0500_0000 })).Refusal);
        Assert.Equal(Start, acceptor.FlushLsn);
    }
}
