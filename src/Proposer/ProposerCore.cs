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

/// <summary>How much WAL the proposer sends at once and keeps in memory.</summary>
public sealed record ProposerLimits
{
    /// <summary>Appends are cut at the last record end within this size (a longer record goes whole).</summary>
    public int MaxAppendBytes { get; init; } = 128 * 1024;

    /// <summary>
    /// WAL sent to one acceptor and not yet acknowledged stays below this: a safekeeper that stops
    /// acknowledging (frozen, partitioned, a full disk) gets no more, so nothing queues up for it
    /// without bound; it is caught up from the buffer or from a peer once it answers again.
    /// </summary>
    public long MaxUnacknowledgedBytes { get; init; } = 16 * 1024 * 1024;

    /// <summary>
    /// The buffer keeps WAL below the commit LSN for lagging acceptors only this far back; one that
    /// lags more recovers from a peer instead, so the proposer's memory stays bounded.
    /// </summary>
    public long MaxBufferedBehindCommit { get; init; } = 64 * 1024 * 1024;
}

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
    /// <summary>The defaults of <see cref="ProposerLimits"/> (the append size, the per-acceptor window and the buffer bound).</summary>
    public static readonly ProposerLimits DefaultLimits = new();

    private sealed class Peer
    {
        public bool Connected;
        public bool Greeted;
        public VoteResponse? Vote;      // the vote response received on the current connection
        public bool ElectedSent;
        public Lsn NextToSend;
        public Lsn SendingFrom;         // where this conversation started (or restarted) sending WAL
        public Lsn AckedFlush;          // the highest flush LSN acknowledged in this term
        public Lsn SentCommit;
    }

    private readonly Peer[] _peers;
    private WalBuffer? _wal;
    private ulong _highestSeenTerm;
    private int _donor = -1;
    private readonly TimelineKey? _timeline;

    private readonly ProposerLimits _limits;

    public ProposerCore(string proposerId, int acceptorCount, ulong minimumTerm = 0, TimelineKey? timeline = null, ProposerLimits? limits = null)
    {
        _timeline = timeline;
        _limits = limits ?? DefaultLimits;
        if (acceptorCount < 1) throw new ArgumentOutOfRangeException(nameof(acceptorCount));
        if (minimumTerm == ulong.MaxValue) throw new ArgumentOutOfRangeException(nameof(minimumTerm), "no term is above the largest one");
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

    /// <summary>How many bytes of WAL the proposer holds in memory.</summary>
    public int BufferedBytes => _wal?.Length ?? 0;

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

    /// <summary>
    /// Adds whole WAL records at <see cref="EndLsn"/> and sends them to every acceptor that is ready.
    /// <paramref name="recordEnds"/> names record ends inside <paramref name="bytes"/> (ascending);
    /// the end of <paramref name="bytes"/> must be a record end too. Appends are cut only there.
    /// </summary>
    public void AppendWal(ReadOnlySpan<byte> bytes, ReadOnlySpan<Lsn> recordEnds = default)
    {
        if (Phase == ProposerPhase.Fenced) throw new InvalidOperationException($"proposer is fenced: {FenceReason}");
        if (Phase != ProposerPhase.Elected || _wal is null) throw new InvalidOperationException("proposer is not elected yet");
        _wal.Append(bytes, recordEnds);
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

    /// <summary>
    /// WAL [from, from + bytes.Length) read from a peer acceptor of this term, with the record ends
    /// inside it (the driver decoded it, checking every record's CRC, before handing it over).
    /// </summary>
    public void OnRecoveredWal(Lsn from, ReadOnlySpan<byte> bytes, ReadOnlySpan<Lsn> recordEnds = default)
    {
        if (_wal is null || Phase != ProposerPhase.Elected) return;
        if (from >= _wal.Start) return; // already have it
        var end = from + (ulong)bytes.Length;
        if (end < _wal.Start) throw new ArgumentException($"recovered WAL ends at {end}, before the buffered WAL starts at {_wal.Start}");
        var needed = _wal.Start;
        int keep = 0;
        while (keep < recordEnds.Length && recordEnds[keep] < needed) keep++;
        _wal.Prepend(from, bytes[..(int)(needed - from)], recordEnds[..keep]);
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
            peer.NextToSend = peer.SendingFrom = firstAvailable;
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
            if (_highestSeenTerm == ulong.MaxValue)
            {
                Fence($"the term space of this timeline is exhausted: a safekeeper reports term {_highestSeenTerm}");
                return;
            }
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
        peer.NextToSend = peer.SendingFrom = start;
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
        Pump(acceptor); // its window of unacknowledged WAL may have room again
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
        // Keep what a connected acceptor may still need, within bounds; a reconnecting one, or one
        // lagging further behind, recovers from a peer.
        var keepFrom = CommitLsn;
        var oldestKept = CommitLsn.Value > (ulong)_limits.MaxBufferedBehindCommit ? new Lsn(CommitLsn.Value - (ulong)_limits.MaxBufferedBehindCommit) : Lsn.Zero;
        foreach (var p in _peers)
            if (p.ElectedSent && p.AckedFlush >= oldestKept) keepFrom = Lsn.Min(keepFrom, p.AckedFlush);
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
        // Unacknowledged WAL counts from what the acceptor acknowledged in this term (or, before
        // its first acknowledgement, from where this conversation started sending).
        var acked = Lsn.MaxOf(peer.AckedFlush, peer.SendingFrom);
        while (peer.NextToSend < _wal.End && peer.NextToSend - acked < _limits.MaxUnacknowledgedBytes)
        {
            var end = _wal.SendableEnd(peer.NextToSend, _limits.MaxAppendBytes);
            SendAppend(acceptor, peer.NextToSend, _wal.Read(peer.NextToSend, end));
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
