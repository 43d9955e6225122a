using Google.Protobuf;
using Storage.Core;
using Storage.Core.Consensus;
using Storage.Proto.Safekeeper;

namespace Storage.Proposer;

public enum ProposerPhase { Campaigning, Elected, Fenced }

/// <summary>A message the proposer wants sent to acceptor <paramref name="Acceptor"/>.</summary>
public readonly record struct Outgoing(int Acceptor, ProposerMessage Message);

/// <summary>WAL [From, To) that some acceptor needs and only a peer acceptor holds.</summary>
public readonly record struct RecoveryNeed(Lsn From, Lsn To, IReadOnlyList<int> Sources);

/// <summary>
/// The proposer side of the WAL consensus as a deterministic state machine: it consumes
/// acceptor messages and connection events and leaves the messages to send in <see cref="Outbox"/>.
/// A driver (the networked <see cref="WalProposer"/>, or a property test) owns the transport.
///
/// Election: a term above every term a majority reported; the donor is the voter with the highest
/// (last_log_term, flush_lsn); the start LSN E is the donor's flush LSN. Each acceptor is cut at its
/// divergence point and brought up to the donor (from WAL recovered from a peer) before new WAL.
/// Commit: the quorum-th highest flush LSN acknowledged in this term, counting an acceptor only once
/// it reaches E (like Raft, WAL of earlier terms is committed only through the new term's WAL).
/// </summary>
public sealed class ProposerCore
{
    public const int MaxAppendBytes = 128 * 1024;

    private sealed class Peer
    {
        public bool Connected;
        public bool Greeted;
        public VoteResponse? Vote;      // the vote response received on the current connection
        public bool ElectedSent;
        public Lsn NextToSend;
        public Lsn AckedFlush;          // the highest flush LSN acknowledged in this term
        public Lsn SentCommit;
    }

    private readonly Peer[] _peers;
    private WalBuffer? _wal;
    private ulong _highestSeenTerm;
    private int _donor = -1;
    private readonly TimelineKey? _timeline;

    public ProposerCore(string proposerId, int acceptorCount, ulong minimumTerm = 0, TimelineKey? timeline = null)
    {
        _timeline = timeline;
        if (acceptorCount < 1) throw new ArgumentOutOfRangeException(nameof(acceptorCount));
        ProposerId = proposerId;
        _peers = Enumerable.Range(0, acceptorCount).Select(_ => new Peer()).ToArray();
        _highestSeenTerm = minimumTerm;
    }

    public string ProposerId { get; }
    public int Quorum => _peers.Length / 2 + 1;
    public ProposerPhase Phase { get; private set; } = ProposerPhase.Campaigning;
    /// <summary>This proposer's term (0 until it has asked for votes).</summary>
    public ulong Term { get; private set; }
    public TermHistory History { get; private set; } = TermHistory.Empty;
    /// <summary>The start LSN E of this term (valid once elected).</summary>
    public Lsn StartLsn { get; private set; }
    public Lsn TimelineStartLsn { get; private set; }
    public Lsn CommitLsn { get; private set; }
    /// <summary>End of this proposer's WAL (E plus everything appended).</summary>
    public Lsn EndLsn => _wal?.End ?? Lsn.Zero;
    public string? FenceReason { get; private set; }
    public List<Outgoing> Outbox { get; } = new();

    /// <summary>The index of the donor chosen in the election.</summary>
    public int Donor => _donor;

    /// <summary>The vote response of the donor (what the election chose E from).</summary>
    internal VoteResponse? DonorVote { get; private set; }

    /// <summary>Acceptor flush LSNs acknowledged in this term (for status and tests).</summary>
    public Lsn AckedFlush(int acceptor) => _peers[acceptor].AckedFlush;

    /// <summary>True while the connection to this acceptor is up (as far as the driver has told).</summary>
    public bool IsConnected(int acceptor) => _peers[acceptor].Connected;

    public void OnConnected(int acceptor)
    {
        if (Phase == ProposerPhase.Fenced) return;
        var peer = _peers[acceptor];
        ResetConnection(peer);
        peer.Connected = true;
        Send(acceptor, new ProposerMessage { Greeting = new ProposerGreeting { Timeline = _timeline, ProposerId = ProposerId, ProtocolVersion = 1 } });
    }

    public void OnDisconnected(int acceptor) => ResetConnection(_peers[acceptor]);

    /// <summary>The acceptor refused a message (the driver saw an error status).</summary>
    public void OnRefused(int acceptor, ulong acceptorTerm, string reason)
    {
        if (acceptorTerm > Term && Term != 0)
            Fence($"safekeeper {acceptor} is at term {acceptorTerm}, above this proposer's term {Term}: {reason}");
        ResetConnection(_peers[acceptor]);
    }

    public void OnMessage(int acceptor, AcceptorMessage message)
    {
        if (Phase == ProposerPhase.Fenced) return;
        switch (message.BodyCase)
        {
            case AcceptorMessage.BodyOneofCase.Greeting: OnGreeting(acceptor, message.Greeting); break;
            case AcceptorMessage.BodyOneofCase.VoteResponse: OnVote(acceptor, message.VoteResponse); break;
            case AcceptorMessage.BodyOneofCase.AppendResponse: OnAppendResponse(acceptor, message.AppendResponse); break;
        }
    }

    /// <summary>Adds new WAL at <see cref="EndLsn"/> and sends it to every acceptor that is ready.</summary>
    public void AppendWal(ReadOnlySpan<byte> bytes)
    {
        if (Phase == ProposerPhase.Fenced) throw new InvalidOperationException($"proposer is fenced: {FenceReason}");
        if (Phase != ProposerPhase.Elected || _wal is null) throw new InvalidOperationException("proposer is not elected yet");
        _wal.Append(bytes);
        PumpAll();
    }

    /// <summary>WAL that an acceptor needs and this proposer does not hold, if any.</summary>
    public RecoveryNeed? PendingRecovery
    {
        get
        {
            if (Phase != ProposerPhase.Elected || _wal is null) return null;
            Lsn? from = null;
            foreach (var p in _peers)
                if (p.ElectedSent && p.NextToSend < _wal.Start)
                    from = from is null ? p.NextToSend : Lsn.Min(from.Value, p.NextToSend);
            if (from is null) return null;
            var to = _wal.Start;
            // Who holds [From, To) of this term's WAL: the donor up to E, and anyone that acked past To.
            var sources = new List<int>();
            if (_donor >= 0 && to <= StartLsn) sources.Add(_donor);
            for (int i = 0; i < _peers.Length; i++)
                if (!sources.Contains(i) && _peers[i].AckedFlush >= to) sources.Add(i);
            return new RecoveryNeed(from.Value, to, sources);
        }
    }

    /// <summary>WAL [from, from + bytes.Length) read from a peer acceptor of this term.</summary>
    public void OnRecoveredWal(Lsn from, ReadOnlySpan<byte> bytes)
    {
        if (_wal is null || Phase != ProposerPhase.Elected) return;
        if (from >= _wal.Start) return; // already have it
        var end = from + (ulong)bytes.Length;
        if (end < _wal.Start) throw new ArgumentException($"recovered WAL ends at {end}, before the buffered WAL starts at {_wal.Start}");
        _wal.Prepend(from, bytes[..(int)(_wal.Start - from)]);
        PumpAll();
    }

    /// <summary>
    /// A peer could not serve recovery: it trimmed its WAL below <paramref name="firstAvailable"/>.
    /// Trimmed WAL is committed and durable in object storage and the pageserver's copy, so nobody
    /// needs it from a safekeeper again: each acceptor that lacks WAL below that point is told to
    /// start its local WAL there (StartWalAt) and is then caught up from there. Simpler than
    /// refilling its gap from object storage, and it leaves the proposer's transport unchanged.
    /// Returns false (retry later) while this proposer does not yet know that point is committed.
    /// </summary>
    public bool OnPeerWalRemoved(Lsn firstAvailable)
    {
        if (Phase != ProposerPhase.Elected || _wal is null || firstAvailable > CommitLsn) return false;
        bool moved = false;
        for (int i = 0; i < _peers.Length; i++)
        {
            var peer = _peers[i];
            if (!peer.ElectedSent || peer.NextToSend >= firstAvailable) continue;
            Send(i, new ProposerMessage { StartWalAt = new StartWalAt { Term = Term, Lsn = firstAvailable.Value, CommitLsn = CommitLsn.Value } });
            peer.NextToSend = firstAvailable;
            moved = true;
            Pump(i);
            if (peer.NextToSend == firstAvailable && firstAvailable == _wal.End)
                SendAppend(i, firstAvailable, Array.Empty<byte>()); // so it acknowledges its new position
        }
        return moved;
    }

    private void OnGreeting(int acceptor, AcceptorGreeting greeting)
    {
        var peer = _peers[acceptor];
        if (!peer.Connected) return;
        peer.Greeted = true;
        _highestSeenTerm = Math.Max(_highestSeenTerm, greeting.Term);
        if (Term == 0)
        {
            if (_peers.Count(p => p.Greeted) < Quorum) return;
            Term = _highestSeenTerm + 1;
            for (int i = 0; i < _peers.Length; i++)
                if (_peers[i].Greeted) Send(i, new ProposerMessage { VoteRequest = new VoteRequest { Term = Term } });
        }
        else if (greeting.Term > Term)
        {
            Fence($"safekeeper {acceptor} is at term {greeting.Term}, above this proposer's term {Term}");
        }
        else
        {
            Send(acceptor, new ProposerMessage { VoteRequest = new VoteRequest { Term = Term } });
        }
    }

    private void OnVote(int acceptor, VoteResponse vote)
    {
        var peer = _peers[acceptor];
        if (vote.Term > Term) { Fence($"safekeeper {acceptor} answered the vote with term {vote.Term}, above this proposer's term {Term}"); return; }
        if (vote.Term < Term || !peer.Connected || !peer.Greeted) return; // stale
        peer.Vote = vote;
        if (Phase == ProposerPhase.Campaigning)
        {
            if (_peers.Count(p => p.Vote is { VoteGiven: true }) >= Quorum) BecomeElected();
        }
        else if (!peer.ElectedSent)
        {
            SendElected(acceptor);
        }
    }

    private void BecomeElected()
    {
        // The donor: highest (last_log_term, flush_lsn) among those that voted for us.
        int donor = -1;
        (ulong term, ulong flush) best = (0, 0);
        for (int i = 0; i < _peers.Length; i++)
        {
            var v = _peers[i].Vote;
            if (v is not { VoteGiven: true }) continue;
            var key = (TermHistory.FromProto(v.TermHistory).LastLogTerm(new Lsn(v.FlushLsn)), v.FlushLsn);
            if (donor < 0 || key.CompareTo(best) > 0) { donor = i; best = key; }
        }
        var donorVote = _peers[donor].Vote!;
        _donor = donor;
        DonorVote = donorVote;
        TimelineStartLsn = new Lsn(donorVote.TimelineStartLsn);
        StartLsn = Lsn.MaxOf(new Lsn(donorVote.FlushLsn), TimelineStartLsn);
        History = TermHistory.FromProto(donorVote.TermHistory).UpTo(StartLsn).Append(Term, StartLsn);
        _wal = new WalBuffer(StartLsn);
        Phase = ProposerPhase.Elected;
        for (int i = 0; i < _peers.Length; i++)
            if (_peers[i].Vote is not null) SendElected(i);
    }

    private void SendElected(int acceptor)
    {
        var peer = _peers[acceptor];
        var vote = peer.Vote!;
        var start = TermHistory.HighestCommonPoint(History, TermHistory.FromProto(vote.TermHistory), new Lsn(vote.FlushLsn), TimelineStartLsn);
        var elected = new ProposerElected { Term = Term, StartStreamingAt = start.Value };
        elected.TermHistory.AddRange(History.ToProto());
        Send(acceptor, new ProposerMessage { Elected = elected });
        peer.ElectedSent = true;
        peer.NextToSend = start;
        Pump(acceptor);
        // An acceptor that already holds all our WAL still needs an append to acknowledge (and
        // learn the commit LSN); an empty one does.
        if (peer.NextToSend == start && _wal is not null && start == _wal.End)
            SendAppend(acceptor, start, Array.Empty<byte>());
    }

    private void OnAppendResponse(int acceptor, AppendResponse response)
    {
        if (response.Term > Term) { Fence($"safekeeper {acceptor} answered an append with term {response.Term}, above this proposer's term {Term}"); return; }
        if (response.Term < Term || Phase != ProposerPhase.Elected) return;
        var peer = _peers[acceptor];
        // Only a connection that took our ProposerElected holds our history; ignore stale acks.
        if (!peer.ElectedSent) return;
        var flush = new Lsn(response.FlushLsn);
        if (flush > peer.AckedFlush) peer.AckedFlush = flush;
        AdvanceCommit();
    }

    private void AdvanceCommit()
    {
        // Acks below E do not count: WAL of earlier terms commits only together with this term's.
        var acks = _peers.Select(p => p.AckedFlush >= StartLsn ? p.AckedFlush : Lsn.Zero)
                         .OrderByDescending(l => l.Value).ToArray();
        var candidate = acks[Quorum - 1];
        if (candidate <= CommitLsn) return;
        CommitLsn = candidate;
        TrimBuffer();
        // Tell idle acceptors the new commit LSN (busy ones learn it from the next append).
        for (int i = 0; i < _peers.Length; i++)
        {
            var p = _peers[i];
            if (p.ElectedSent && p.NextToSend == EndLsn && p.SentCommit < CommitLsn)
                SendAppend(i, p.NextToSend, Array.Empty<byte>());
        }
    }

    private void TrimBuffer()
    {
        if (_wal is null) return;
        // Keep what a connected acceptor may still need; a reconnecting one recovers from a peer.
        var keepFrom = CommitLsn;
        foreach (var p in _peers)
            if (p.ElectedSent) keepFrom = Lsn.Min(keepFrom, p.AckedFlush);
        if (keepFrom > _wal.Start) _wal.TrimTo(keepFrom);
    }

    private void PumpAll()
    {
        for (int i = 0; i < _peers.Length; i++) Pump(i);
    }

    private void Pump(int acceptor)
    {
        var peer = _peers[acceptor];
        if (!peer.ElectedSent || _wal is null || peer.NextToSend < _wal.Start) return;
        while (peer.NextToSend < _wal.End)
        {
            var chunk = _wal.Read(peer.NextToSend, MaxAppendBytes);
            SendAppend(acceptor, peer.NextToSend, chunk);
        }
    }

    private void SendAppend(int acceptor, Lsn begin, byte[] data)
    {
        var peer = _peers[acceptor];
        var end = begin + (ulong)data.Length;
        Send(acceptor, new ProposerMessage
        {
            Append = new AppendRequest
            {
                Term = Term,
                BeginLsn = begin.Value,
                EndLsn = end.Value,
                CommitLsn = CommitLsn.Value,
                WalData = UnsafeByteOperations.UnsafeWrap(data), // data is a fresh copy
            },
        });
        peer.NextToSend = end;
        peer.SentCommit = CommitLsn;
    }

    private void Send(int acceptor, ProposerMessage message) => Outbox.Add(new Outgoing(acceptor, message));

    private void Fence(string reason)
    {
        if (Phase == ProposerPhase.Fenced) return;
        Phase = ProposerPhase.Fenced;
        FenceReason = reason;
        Outbox.Clear();
    }

    private static void ResetConnection(Peer peer)
    {
        peer.Connected = false;
        peer.Greeted = false;
        peer.Vote = null;
        peer.ElectedSent = false;
    }
}
