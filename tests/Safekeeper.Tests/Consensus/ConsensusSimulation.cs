using Storage.Core;
using Storage.Proposer;
using Storage.Proto.Safekeeper;
using Storage.Safekeeper.Consensus;

namespace Storage.Safekeeper.Tests.Consensus;

/// <summary>One step of a simulated run; the integers pick what happens and to whom.</summary>
public readonly record struct SimStep(int Kind, int A, int B);

/// <summary>
/// Three acceptors and competing proposers on a network that loses, delays, reorders and
/// duplicates messages, with acceptors that crash and lose unflushed WAL. Every commit a proposer
/// reports is recorded as the WAL prefix it believes committed; <see cref="CheckSafety"/> verifies
/// no two commits disagree and a final clean election keeps every one of them.
/// </summary>
internal sealed class ConsensusSimulation
{
    public static readonly Lsn TimelineStart = new(0x100);
    private const int Acceptors = 3;

    private abstract record InFlight(int Proposer, int Acceptor);
    private sealed record ToAcceptor(int Proposer, int Acceptor, ProposerMessage Message) : InFlight(Proposer, Acceptor);
    private sealed record ToProposer(int Proposer, int Acceptor, AcceptorMessage Message) : InFlight(Proposer, Acceptor);
    private sealed record Refusal(int Proposer, int Acceptor, ulong Term, string Reason) : InFlight(Proposer, Acceptor);

    private sealed class SimAcceptor(int index)
    {
        public readonly MemoryAcceptorStorage Storage = new(TimelineStart);
        public Acceptor Core = null!;
        public SimProposer? LastAppender; // the proposer instance whose append it took last
        public void Boot() => Core = new Acceptor(Storage, (ulong)index + 1, $"az-{(char)('a' + index)}");
    }

    private sealed class SimProposer(ProposerCore core, int generation)
    {
        public readonly ProposerCore Core = core;
        public readonly int Generation = generation;
        public readonly List<byte> Appended = new();
        public byte[]? DonorWal; // the donor's durable WAL [TimelineStart, E) when it voted
        public Lsn ReportedCommit;
    }

    private readonly SimAcceptor[] _acceptors = Enumerable.Range(0, Acceptors).Select(i => new SimAcceptor(i)).ToArray();
    private readonly SimProposer[] _proposers = new SimProposer[2];
    private readonly List<InFlight> _network = new();
    // The durable WAL an acceptor had when it produced a vote response.
    private readonly Dictionary<VoteResponse, byte[]> _voteSnapshots = new(ReferenceEqualityComparer.Instance);
    private readonly List<byte[]> _committedPrefixes = new();
    private int _generations;

    public IReadOnlyList<byte[]> CommittedPrefixes => _committedPrefixes;
    public int Elections { get; private set; }

    public ConsensusSimulation()
    {
        foreach (var a in _acceptors) a.Boot();
        for (int p = 0; p < _proposers.Length; p++) _proposers[p] = NewProposer(minimumTerm: 0);
    }

    private SimProposer NewProposer(ulong minimumTerm) =>
        new(new ProposerCore($"p{_generations}", Acceptors, minimumTerm), _generations++);

    /// <summary>A vote request straight to an acceptor from no proposer of the run (a rogue or buggy client).</summary>
    public VoteResponse RogueVote(int acceptor, ulong term) => _acceptors[acceptor].Core.OnVoteRequest(new VoteRequest { Term = term });

    public ulong Term(int acceptor) => _acceptors[acceptor].Core.Term;

    public void Run(IEnumerable<SimStep> steps)
    {
        foreach (var step in steps) Apply(step);
    }

    public void Apply(SimStep step)
    {
        int p = Math.Abs(step.A) % _proposers.Length;
        int a = Math.Abs(step.B) % Acceptors;
        switch (Math.Abs(step.Kind) % 16)
        {
            case <= 6: Deliver(step.A, duplicate: false); break;
            case 7: Deliver(step.A, duplicate: true); break;
            case 8: if (_network.Count > 0) _network.RemoveAt(Math.Abs(step.A) % _network.Count); break; // lost
            case 9: Connect(p, a, forceReset: Math.Abs(step.B) % 5 == 0); break;
            case 10: AppendWal(p, 1 + Math.Abs(step.B) % 40); break;
            case 11: case 12: Flush(a); break;
            case 13: if (Math.Abs(step.B) % 3 == 0) CrashAcceptor(a); else Flush(a); break;
            case 14: if (Math.Abs(step.B) % 4 == 0) RestartProposer(p); else Recover(p); break;
            case 15: Recover(p); break;
        }
    }

    private void Deliver(int pick, bool duplicate)
    {
        if (_network.Count == 0) return;
        int i = Math.Abs(pick) % _network.Count;
        var m = _network[i];
        if (!duplicate) _network.RemoveAt(i);
        switch (m)
        {
            case ToAcceptor t: HandleAtAcceptor(t); break;
            case ToProposer t: _proposers[t.Proposer].Core.OnMessage(t.Acceptor, t.Message); AfterProposerStep(t.Proposer); break;
            case Refusal r: _proposers[r.Proposer].Core.OnRefused(r.Acceptor, r.Term, r.Reason); AfterProposerStep(r.Proposer); break;
        }
    }

    private void HandleAtAcceptor(ToAcceptor t)
    {
        var acc = _acceptors[t.Acceptor];
        try
        {
            switch (t.Message.BodyCase)
            {
                case ProposerMessage.BodyOneofCase.Greeting:
                    Reply(t, new AcceptorMessage { Greeting = acc.Core.OnGreeting() });
                    break;
                case ProposerMessage.BodyOneofCase.VoteRequest:
                    var vote = acc.Core.OnVoteRequest(t.Message.VoteRequest);
                    _voteSnapshots[vote] = acc.Storage.DurableWal();
                    Reply(t, new AcceptorMessage { VoteResponse = vote });
                    break;
                case ProposerMessage.BodyOneofCase.Elected:
                    acc.Core.OnElected(t.Message.Elected);
                    break;
                case ProposerMessage.BodyOneofCase.Append:
                    acc.Core.OnAppend(t.Message.Append);
                    acc.LastAppender = _proposers[t.Proposer];
                    break;
            }
        }
        catch (AcceptorRefusal refusal)
        {
            _network.Add(new Refusal(t.Proposer, t.Acceptor, refusal.AcceptorTerm, refusal.Message));
        }
    }

    private void Reply(ToAcceptor t, AcceptorMessage message) => _network.Add(new ToProposer(t.Proposer, t.Acceptor, message));

    private void Connect(int p, int a, bool forceReset = true)
    {
        var core = _proposers[p].Core;
        if (core.IsConnected(a) && !forceReset) return;
        core.OnDisconnected(a);
        core.OnConnected(a);
        AfterProposerStep(p);
    }

    private void AppendWal(int p, int size)
    {
        var sp = _proposers[p];
        if (sp.Core.Phase != ProposerPhase.Elected) return;
        // Bytes that name their writer, so WAL of different proposers never looks alike.
        var bytes = Enumerable.Range(0, size).Select(i => (byte)(sp.Generation * 37 + sp.Appended.Count + i)).ToArray();
        sp.Core.AppendWal(bytes);
        sp.Appended.AddRange(bytes);
        AfterProposerStep(p);
    }

    private void Flush(int a)
    {
        var acc = _acceptors[a];
        acc.Storage.Flush();
        var response = acc.Core.AfterFlush();
        // The response goes back on that proposer's conversation; a replaced proposer's is gone.
        int slot = Array.IndexOf(_proposers, acc.LastAppender);
        if (slot >= 0)
            _network.Add(new ToProposer(slot, a, new AcceptorMessage { AppendResponse = response }));
    }

    private void CrashAcceptor(int a)
    {
        var acc = _acceptors[a];
        acc.Storage.Crash();
        acc.Boot();
        acc.LastAppender = null;
        foreach (var sp in _proposers) sp.Core.OnDisconnected(a);
    }

    private void RestartProposer(int p)
    {
        _proposers[p] = NewProposer(minimumTerm: 0);
        _network.RemoveAll(m => m.Proposer == p);
    }

    /// <summary>Serves the proposer's recovery need from a peer, as ReadWal with proposer_term does.</summary>
    private void Recover(int p)
    {
        var core = _proposers[p].Core;
        if (core.PendingRecovery is not { } need) return;
        foreach (var s in need.Sources)
        {
            var src = _acceptors[s];
            if (src.Core.Term != core.Term || src.Core.FlushLsn < need.To) continue; // refused / not there
            var wal = src.Storage.DurableWal();
            var bytes = wal.AsSpan((int)(need.From - TimelineStart), (int)(need.To - need.From));
            core.OnRecoveredWal(need.From, bytes);
            AfterProposerStep(p);
            return;
        }
    }

    private void AfterProposerStep(int p)
    {
        var sp = _proposers[p];
        var core = sp.Core;
        foreach (var o in core.Outbox) _network.Add(new ToAcceptor(p, o.Acceptor, o.Message));
        core.Outbox.Clear();
        if (core.Phase == ProposerPhase.Elected && sp.DonorWal is null)
        {
            Elections++;
            var snapshot = _voteSnapshots[core.DonorVote!];
            sp.DonorWal = snapshot.Take((int)(core.StartLsn - TimelineStart)).ToArray();
            if (sp.DonorWal.Length != (int)(core.StartLsn - TimelineStart))
                throw new InvalidOperationException("donor snapshot shorter than E");
        }
        if (core.CommitLsn > sp.ReportedCommit)
        {
            sp.ReportedCommit = core.CommitLsn;
            var content = sp.DonorWal!.Concat(sp.Appended).ToArray();
            int n = (int)(core.CommitLsn - TimelineStart);
            if (n > content.Length) throw new InvalidOperationException($"proposer {core.ProposerId} reports commit {core.CommitLsn} beyond its WAL end {core.EndLsn}");
            var prefix = content.Take(n).ToArray();
            CheckConsistent(prefix, $"commit {core.CommitLsn} of proposer {core.ProposerId} (term {core.Term})");
            _committedPrefixes.Add(prefix);
        }
    }

    private void CheckConsistent(byte[] prefix, string what)
    {
        foreach (var other in _committedPrefixes)
        {
            int n = Math.Min(other.Length, prefix.Length);
            if (!other.AsSpan(0, n).SequenceEqual(prefix.AsSpan(0, n)))
                throw new InvalidOperationException($"{what} disagrees with an earlier committed prefix of {other.Length} bytes");
        }
    }

    /// <summary>
    /// Heals the network and runs a fresh proposer to completion; its WAL must extend every
    /// committed prefix, and afterwards it must be able to commit new WAL itself.
    /// </summary>
    public void CheckSafety()
    {
        _network.Clear();
        ulong highest = _acceptors.Max(a => a.Core.Term);
        _proposers[0] = NewProposer(highest);
        _proposers[1] = NewProposer(highest); // idle: it never connects
        for (int a = 0; a < Acceptors; a++) Connect(0, a);
        var final = _proposers[0];
        bool appended = false;
        for (int round = 0; round < 10_000; round++)
        {
            if (_network.Count == 0)
            {
                for (int a = 0; a < Acceptors; a++) Flush(a);
                if (final.Core.PendingRecovery is not null) Recover(0);
                if (final.Core.Phase == ProposerPhase.Elected && !appended) { AppendWal(0, 10); appended = true; }
                if (_network.Count == 0) break;
            }
            if (final.Core.Phase == ProposerPhase.Fenced)
                throw new InvalidOperationException($"the final proposer was fenced: {final.Core.FenceReason}");
            Deliver(0, duplicate: false);
        }
        if (final.Core.Phase != ProposerPhase.Elected) throw new InvalidOperationException("the final proposer was not elected on a healed network");
        if (final.Core.CommitLsn < final.Core.EndLsn)
            throw new InvalidOperationException($"the final proposer did not commit its WAL: commit {final.Core.CommitLsn}, end {final.Core.EndLsn}");

        var finalWal = final.DonorWal!.Concat(final.Appended).ToArray();
        foreach (var prefix in _committedPrefixes)
        {
            if (prefix.Length > finalWal.Length || !finalWal.AsSpan(0, prefix.Length).SequenceEqual(prefix))
                throw new InvalidOperationException($"a committed prefix of {prefix.Length} bytes was lost: the final WAL has {finalWal.Length} bytes and differs");
        }
        foreach (var acc in _acceptors)
        {
            var wal = acc.Storage.DurableWal();
            if (!wal.AsSpan().SequenceEqual(finalWal))
                throw new InvalidOperationException($"acceptor {acc.Core.NodeId} holds {wal.Length} bytes that differ from the final WAL of {finalWal.Length} bytes");
            if (acc.Core.CommitLsn > final.Core.CommitLsn)
                throw new InvalidOperationException($"acceptor {acc.Core.NodeId} has commit {acc.Core.CommitLsn} beyond the final commit {final.Core.CommitLsn}");
        }
    }
}
