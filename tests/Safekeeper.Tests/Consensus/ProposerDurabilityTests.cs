using Storage.Core;
using Storage.Core.Wal;
using Storage.Proposer;
using Storage.Proto.Safekeeper;
using Storage.Safekeeper.Consensus;

namespace Storage.Safekeeper.Tests.Consensus;

/// <summary>
/// The proposer core against in-memory acceptors, with every message delivered (or held back) by
/// hand: appends end only at record boundaries, a silent acceptor gets a bounded amount of WAL, and
/// term arithmetic cannot wrap.
/// </summary>
public class ProposerDurabilityTests
{
    private static readonly Lsn Start = new(0x0100_0000);

    /// <summary>Acceptors on a network whose messages the test delivers.</summary>
    private sealed class Net
    {
        public readonly MemoryAcceptorStorage[] Storage = Enumerable.Range(0, 3).Select(_ => new MemoryAcceptorStorage(Start)).ToArray();
        public readonly Acceptor[] Acceptors;
        public readonly List<Outgoing> InFlight = new();

        public Net() => Acceptors = Storage.Select((s, i) => new Acceptor(s, (ulong)i + 1, "az")).ToArray();

        /// <summary>Runs the proposer until the network is quiet, delivering to <paramref name="to"/> only (others' messages stay in flight).</summary>
        public void Run(ProposerCore core, params int[] to)
        {
            Collect(core);
            while (InFlight.FirstOrDefault(o => to.Contains(o.Acceptor)) is { Message: not null } next)
            {
                InFlight.Remove(next);
                Deliver(core, next);
                Collect(core);
            }
        }

        public void Collect(ProposerCore core)
        {
            InFlight.AddRange(core.Outbox);
            core.Outbox.Clear();
        }

        public void Deliver(ProposerCore core, Outgoing o)
        {
            var a = Acceptors[o.Acceptor];
            var m = o.Message;
            switch (m.BodyCase)
            {
                case ProposerMessage.BodyOneofCase.Greeting: core.OnMessage(o.Acceptor, new AcceptorMessage { Greeting = a.OnGreeting() }); break;
                case ProposerMessage.BodyOneofCase.VoteRequest: core.OnMessage(o.Acceptor, new AcceptorMessage { VoteResponse = a.OnVoteRequest(m.VoteRequest) }); break;
                case ProposerMessage.BodyOneofCase.Elected: a.OnElected(m.Elected); break;
                case ProposerMessage.BodyOneofCase.Append:
                    a.OnAppend(m.Append);
                    Storage[o.Acceptor].Flush();
                    core.OnMessage(o.Acceptor, new AcceptorMessage { AppendResponse = a.AfterFlush() });
                    break;
            }
        }

        public ProposerCore Elect(string id, ulong minimumTerm, ProposerLimits? limits = null, params int[] voters)
        {
            var core = new ProposerCore(id, 3, minimumTerm, limits: limits);
            foreach (var i in voters) core.OnConnected(i);
            Run(core, voters);
            Assert.Equal(ProposerPhase.Elected, core.Phase);
            return core;
        }
    }

    [Fact]
    public void Appends_end_at_record_boundaries_so_an_election_after_a_partial_delivery_starts_at_one()
    {
        var net = new Net();
        var first = net.Elect("p1", 0, null, 0, 1, 2);

        // Small records, one 300 KiB record (like a GIN index build's full-page images), small ones again.
        var builder = new WalBuilder(Start);
        for (int i = 0; i < 3; i++) builder.AppendNoop(1000);
        builder.AppendNoop(300 * 1024);
        builder.AppendNoop(100);
        var wal = builder.TakeBytes();
        var recordEnds = WalRecordEnds.Find(Start, wal);
        first.AppendWal(wal, recordEnds.ToArray());
        net.Collect(first);

        var appends = net.InFlight.Where(o => o.Acceptor == 0 && o.Message.Append is { WalData.IsEmpty: false }).Select(o => o.Message.Append).ToList();
        Assert.True(appends.Count > 1, "the batch was not split");
        foreach (var append in appends)
            Assert.Contains(new Lsn(append.EndLsn), recordEnds);

        // Only the first piece reaches two safekeepers; then the compute dies and another is elected.
        foreach (var acceptor in new[] { 0, 1 })
        {
            var piece = net.InFlight.First(o => o.Acceptor == acceptor && o.Message.Append is { WalData.IsEmpty: false });
            net.InFlight.Remove(piece);
            net.Deliver(first, piece);
        }
        net.InFlight.Clear();
        var second = net.Elect("p2", first.Term, null, 0, 1, 2);
        Assert.True(second.StartLsn > Start);
        Assert.Contains(second.StartLsn, recordEnds);
    }

    [Fact]
    public void A_record_longer_than_an_append_goes_whole()
    {
        var net = new Net();
        var core = net.Elect("p1", 0, null, 0, 1, 2);
        var builder = new WalBuilder(Start);
        builder.AppendNoop(700 * 1024);
        var wal = builder.TakeBytes();
        core.AppendWal(wal);
        net.Run(core, 0, 1, 2);
        Assert.Equal(Start + (ulong)wal.Length, core.CommitLsn);
        Assert.Equal(wal, net.Storage[0].DurableWal());
    }

    [Fact]
    public void A_silent_safekeeper_is_sent_a_bounded_amount_and_the_buffer_stays_bounded()
    {
        var limits = new ProposerLimits { MaxAppendBytes = 4096, MaxUnacknowledgedBytes = 64 * 1024, MaxBufferedBehindCommit = 256 * 1024 };
        var net = new Net();
        var core = net.Elect("p1", 0, limits, 0, 1, 2);
        net.InFlight.RemoveAll(o => o.Acceptor == 2); // safekeeper 3 is frozen from here on: it never answers

        var piece = new byte[1024];
        for (int i = 0; i < 2048; i++) // 2 MiB, far beyond the window and the buffer bound
        {
            core.AppendWal(piece);
            net.Run(core, 0, 1);
        }
        Assert.Equal(core.EndLsn, core.CommitLsn);
        long queuedForSilent = net.InFlight.Where(o => o.Acceptor == 2).Sum(o => (long)(o.Message.Append?.WalData.Length ?? 0));
        Assert.InRange(queuedForSilent, 1, limits.MaxUnacknowledgedBytes + limits.MaxAppendBytes);
        Assert.InRange(core.BufferedBytes, 0, (int)limits.MaxBufferedBehindCommit + limits.MaxAppendBytes);

        // Once it answers again it is caught up: what it lacks below the buffer comes from a peer.
        core.OnDisconnected(2);
        net.InFlight.Clear();
        core.OnConnected(2);
        net.Run(core, 2);
        var need = core.PendingRecovery ?? throw new Xunit.Sdk.XunitException("no recovery asked for the lagging safekeeper");
        var fromPeer = net.Storage[0].DurableWal().AsSpan((int)(need.From - Start), (int)(need.To - need.From));
        core.OnRecoveredWal(need.From, fromPeer);
        net.Run(core, 2);
        Assert.Equal(net.Storage[0].DurableWal(), net.Storage[2].DurableWal());
    }

    [Fact]
    public void A_safekeeper_at_the_largest_term_fences_the_proposer_with_a_clear_reason_instead_of_wrapping()
    {
        var net = new Net();
        var core = new ProposerCore("p1", 3);
        foreach (var i in new[] { 0, 1 }) core.OnConnected(i);
        net.Collect(core);
        net.InFlight.Clear();
        core.OnMessage(0, new AcceptorMessage { Greeting = new AcceptorGreeting { Term = ulong.MaxValue, NodeId = 1 } });
        core.OnMessage(1, new AcceptorMessage { Greeting = new AcceptorGreeting { Term = 3, NodeId = 2 } });
        Assert.Equal(ProposerPhase.Fenced, core.Phase);
        Assert.Contains("term space", core.FenceReason);
        Assert.Empty(core.Outbox); // no vote for term 0 was asked
        Assert.Throws<ArgumentOutOfRangeException>(() => new ProposerCore("p2", 3, minimumTerm: ulong.MaxValue));
    }
}
