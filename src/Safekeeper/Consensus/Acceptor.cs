using Storage.Core;
using Storage.Core.Consensus;
using Storage.Proto.Safekeeper;

namespace Storage.Safekeeper.Consensus;

/// <summary>
/// The acceptor side of the WAL consensus (Neon's safekeeper protocol): votes for terms, adopts
/// the elected proposer's term history, takes its WAL, and learns the commit LSN.
///
/// It is deterministic and message-driven so that property tests can drive it with any
/// interleaving of messages; it keeps no per-connection state, so lost, reordered or duplicated
/// messages are either harmless or refused. Callers serialize calls per timeline.
/// </summary>
public sealed class Acceptor
{
    private readonly IAcceptorStorage _storage;
    private ulong _proposerCommit; // the commit LSN the current term's proposer last told us

    public Acceptor(IAcceptorStorage storage, ulong nodeId, string availabilityZone)
    {
        _storage = storage;
        NodeId = nodeId;
        AvailabilityZone = availabilityZone;
        CommitLsn = storage.State.CommitLsn;
    }

    public ulong NodeId { get; }
    public string AvailabilityZone { get; }
    public ulong Term => _storage.State.Term;
    public TermHistory History => _storage.State.History;
    public Lsn FlushLsn => _storage.FlushLsn;
    public Lsn WriteLsn => _storage.WriteLsn;
    public Lsn TimelineStartLsn => _storage.State.TimelineStartLsn;
    public Lsn LocalStartLsn => _storage.State.LocalStartLsn;
    /// <summary>In-memory commit LSN (the persisted one may lag behind it).</summary>
    public Lsn CommitLsn { get; private set; }
    public ulong LastLogTerm => History.LastLogTerm(FlushLsn);

    public AcceptorGreeting OnGreeting() =>
        new() { Term = Term, NodeId = NodeId, AvailabilityZone = AvailabilityZone };

    /// <summary>
    /// How far above its current term an acceptor lets a proposer go. A proposer asks for the
    /// highest term it saw plus one, so real jumps are small; a huge one is a bug or a rogue
    /// client, and granting ulong.MaxValue would leave the next proposer no term above it (its
    /// term + 1 wraps to 0): the timeline could never elect again.
    /// </summary>
    public const ulong MaxTermJump = 1UL << 32;

    /// <summary>Votes for a term higher than any seen; the new term is persisted before answering.</summary>
    public VoteResponse OnVoteRequest(VoteRequest request)
    {
        RefuseAbsurdTerm(request.Term, "vote request");
        bool given = request.Term > Term;
        if (given)
            _storage.Persist(_storage.State with { Term = request.Term, CommitLsn = CommitLsn });
        var response = new VoteResponse
        {
            Term = Term,
            VoteGiven = given,
            FlushLsn = FlushLsn.Value,
            CommitLsn = CommitLsn.Value,
            TimelineStartLsn = TimelineStartLsn.Value,
        };
        response.TermHistory.AddRange(History.ToProto());
        return response;
    }

    /// <summary>
    /// Adopts an elected proposer: cuts the WAL at the divergence point (which it recomputes and
    /// must match the proposer's), never below the commit LSN, then takes the proposer's history.
    /// </summary>
    public void OnElected(ProposerElected elected)
    {
        if (elected.Term < Term)
            throw new AcceptorRefusal(RefusalKind.Superseded, Term, $"ProposerElected of term {elected.Term} refused: this safekeeper is at term {Term}");

        if (elected.Term == 0)
            throw new AcceptorRefusal(RefusalKind.Invalid, Term, "ProposerElected of term 0: terms start at 1");
        RefuseAbsurdTerm(elected.Term, "ProposerElected");
        TermHistory proposerHistory;
        try { proposerHistory = TermHistory.FromProto(elected.TermHistory); }
        catch (ArgumentException e) { throw new AcceptorRefusal(RefusalKind.Invalid, Term, $"ProposerElected carries an invalid term history: {e.Message}"); }
        if (proposerHistory.Count == 0 || proposerHistory.LastTerm != elected.Term)
            throw new AcceptorRefusal(RefusalKind.Invalid, Term, $"ProposerElected of term {elected.Term} must end its term history with that term, got {proposerHistory}");

        var start = new Lsn(elected.StartStreamingAt);
        var commonPoint = TermHistory.HighestCommonPoint(proposerHistory, History, FlushLsn, TimelineStartLsn);
        if (start != commonPoint)
            throw new AcceptorRefusal(RefusalKind.OutOfOrder, Term,
                $"ProposerElected of term {elected.Term} asks to truncate at {start}, but this safekeeper diverges at {commonPoint} (flush {FlushLsn}, history {History})");
        if (start < CommitLsn)
            throw new AcceptorRefusal(RefusalKind.OutOfOrder, Term, $"refusing to truncate WAL at {start}: below the commit LSN {CommitLsn}");

        // A commit LSN learned from an earlier proposer must not count for this one's WAL, even
        // if a step below fails (a full disk) and the proposer reconnects.
        _proposerCommit = 0;
        // Three durable steps, each leaving files a restart reads truthfully:
        // (a) forget the old flush position: recovery must not find WAL up to it once it is cut
        //     (it would take the zeroed bytes for WAL). The old history stays; it describes both
        //     the longer WAL (crash before the cut) and the shorter one (crash after it).
        // (b) cut the WAL.
        // (c) adopt the proposer's history and term.
        if (_storage.State.FlushLsnAtSave > start)
            _storage.Persist(_storage.State with { CommitLsn = CommitLsn, FlushLsnAtSave = start });
        if (start < WriteLsn) _storage.Truncate(start);
        _storage.Persist(_storage.State with { Term = Math.Max(Term, elected.Term), History = proposerHistory, CommitLsn = CommitLsn, FlushLsnAtSave = FlushLsn });
    }

    /// <summary>Writes the WAL of an append (not yet durable: the response comes from <see cref="AfterFlush"/>).</summary>
    public void OnAppend(AppendRequest append)
    {
        if (append.Term < Term)
            throw new AcceptorRefusal(RefusalKind.Superseded, Term, $"append of term {append.Term} refused: this safekeeper is at term {Term}");
        if (append.Term == 0 || append.Term > Term || History.Count == 0 || History.LastTerm != append.Term)
            throw new AcceptorRefusal(RefusalKind.OutOfOrder, Term, $"append of term {append.Term} refused: no ProposerElected of that term was accepted (term {Term}, history {History})");
        if (append.EndLsn < append.BeginLsn || append.EndLsn - append.BeginLsn != (ulong)append.WalData.Length)
            throw new AcceptorRefusal(RefusalKind.Invalid, Term, $"append [{new Lsn(append.BeginLsn)}, {new Lsn(append.EndLsn)}) carries {append.WalData.Length} bytes");
        var begin = new Lsn(append.BeginLsn);
        if (begin > WriteLsn)
            throw new AcceptorRefusal(RefusalKind.OutOfOrder, Term, $"append at {begin} would leave a gap: WAL ends at {WriteLsn}");
        if (begin < TimelineStartLsn)
            throw new AcceptorRefusal(RefusalKind.Invalid, Term, $"append at {begin} is before the timeline start {TimelineStartLsn}");

        // Within one term the proposer's stream is fixed, so rewriting an overlap (a duplicate)
        // writes the same bytes again.
        if (append.WalData.Length > 0) _storage.Write(begin, append.WalData.Span);
        _proposerCommit = Math.Max(_proposerCommit, append.CommitLsn);
    }

    /// <summary>
    /// Starts this acceptor's WAL afresh at a later LSN: the proposer found the WAL between our end
    /// and <c>lsn</c> trimmed on every peer. That WAL is committed (lsn is at most the proposer's
    /// commit LSN, a quorum fact) and, being trimmed, durable in object storage, so nobody needs it
    /// from us. A no-op when we already hold WAL up to <c>lsn</c>.
    /// </summary>
    public void OnStartWalAt(StartWalAt start)
    {
        if (start.Term < Term)
            throw new AcceptorRefusal(RefusalKind.Superseded, Term, $"StartWalAt of term {start.Term} refused: this safekeeper is at term {Term}");
        if (start.Term == 0 || start.Term > Term || History.Count == 0 || History.LastTerm != start.Term)
            throw new AcceptorRefusal(RefusalKind.OutOfOrder, Term, $"StartWalAt of term {start.Term} refused: no ProposerElected of that term was accepted (term {Term}, history {History})");
        var lsn = new Lsn(start.Lsn);
        if (lsn > new Lsn(start.CommitLsn))
            throw new AcceptorRefusal(RefusalKind.Invalid, Term, $"StartWalAt {lsn} is above the proposer's commit LSN {new Lsn(start.CommitLsn)}: only committed WAL may be skipped");
        if (lsn <= WriteLsn) return;
        // Crash safety: the new local start is saved first, so a crash before the old files are
        // gone leaves files below the local start, which recovery ignores and trimming deletes.
        _storage.Persist(_storage.State with { LocalStartLsn = lsn, CommitLsn = Lsn.MaxOf(CommitLsn, lsn), FlushLsnAtSave = lsn });
        _storage.ResetWal(lsn);
        if (lsn > CommitLsn) CommitLsn = lsn;
    }

    /// <summary>After the WAL was flushed: learns the commit LSN and answers the proposer.</summary>
    public AppendResponse AfterFlush()
    {
        // The proposer's commit LSN applies to our WAL only as far as we hold it durably.
        var learned = Lsn.Min(new Lsn(_proposerCommit), FlushLsn);
        if (learned > CommitLsn) CommitLsn = learned;
        return new AppendResponse { Term = Term, FlushLsn = FlushLsn.Value, CommitLsn = CommitLsn.Value };
    }

    /// <summary>Refuses a term no honest proposer asks for (see <see cref="MaxTermJump"/>); nothing is changed.</summary>
    private void RefuseAbsurdTerm(ulong term, string what)
    {
        if (term == ulong.MaxValue)
            throw new AcceptorRefusal(RefusalKind.Invalid, Term, $"{what} of term {term} refused: that is the largest term, no later proposer could go above it");
        if (term > Term && checked(term - Term) > MaxTermJump)
            throw new AcceptorRefusal(RefusalKind.Invalid, Term, $"{what} of term {term} refused: more than {MaxTermJump} above this safekeeper's term {Term}");
    }

    /// <summary>The state to save with the in-memory commit LSN and flush position folded in.</summary>
    public AcceptorState StateToSave() => _storage.State with { CommitLsn = CommitLsn, FlushLsnAtSave = FlushLsn };
}
