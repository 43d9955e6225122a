using Google.Protobuf;
using Storage.Core;
using Storage.Core.Api;
using Storage.Core.Consensus;
using Storage.Core.Wal;
using Storage.Proto.Safekeeper;
using Storage.Safekeeper.Consensus;
using Storage.Safekeeper.Storage;

namespace Storage.Safekeeper.Tests.Storage;

/// <summary>
/// A safekeeper that crashes at any point of an election that cuts its WAL restarts with WAL its
/// control file describes truthfully: never zeroed bytes taken for WAL, never a missing segment.
/// </summary>
public class ElectionCrashTests : IDisposable
{
    private static readonly WalGeometry G = WalGeometry.Default;
    private static readonly Lsn Start = new(0x0100_0000);
    private readonly string _dataDir = Directory.CreateTempSubdirectory("sk-election-crash-").FullName;
    private readonly TimelineIdentity _id = new(TimelineIds.New(), TimelineIds.New(), 150000, 42, G.SegmentSize);

    public void Dispose() => Directory.Delete(_dataDir, recursive: true);

    public enum CrashAt
    {
        BeforeAnyStep,
        AfterForgettingTheFlushPosition,
        /// <summary>The cut deleted the later segments but zeroed nothing yet.</summary>
        WhileCutting,
        /// <summary>The cut zeroed the first 100 kB after the cut point only.</summary>
        WhileZeroing,
        /// <summary>Power lost with only later pages of the zeroing on disk (pages may persist in any order).</summary>
        ZeroedOutOfOrder,
        AfterCutting,
        Never,
    }

    public static TheoryData<CrashAt, bool> CrashPoints()
    {
        var data = new TheoryData<CrashAt, bool>();
        foreach (var crash in Enum.GetValues<CrashAt>())
            foreach (var cutSpansSegments in new[] { false, true })
                data.Add(crash, cutSpansSegments);
        return data;
    }

    [Theory]
    [MemberData(nameof(CrashPoints))]
    public async Task A_crash_at_any_step_of_an_election_that_cuts_the_WAL_restarts_consistent(CrashAt crash, bool cutSpansSegments)
    {
        var dir = Path.Combine(_dataDir, _id.TenantId, _id.TimelineId);
        Directory.CreateDirectory(dir);
        ControlFile.Save(dir, _id, AcceptorState.New(Start));

        // Term 1 wrote WAL up to `written` and saved that flush position; the proposer of term 2
        // holds term 1's WAL only up to `cut`.
        var builder = new WalBuilder(Start);
        var source = new SyntheticTransactions(builder, new Random(1));
        var wal = new MemoryStream();
        wal.Write(source.Next(200_000));
        var cut = builder.EndLsn;
        wal.Write(source.Next(cutSpansSegments ? G.SegmentSize : 300_000));
        var written = builder.EndLsn;
        Assert.Equal(cutSpansSegments, G.SegmentNumber(written) > G.SegmentNumber(cut));

        var files = new SegmentFiles(dir, G);
        var store = new WalStore(files, Start);
        var storage = new CrashingStorage(new TimelineStorage(dir, _id, AcceptorState.New(Start), store), files);
        var acceptor = new Acceptor(storage, 1, "az-a");
        acceptor.OnVoteRequest(new VoteRequest { Term = 1 });
        acceptor.OnElected(Elected(1, Start, new TermSwitch(1, Start)));
        acceptor.OnAppend(new AppendRequest { Term = 1, BeginLsn = Start.Value, EndLsn = written.Value, WalData = ByteString.CopyFrom(wal.ToArray()) });
        store.Flush();
        acceptor.AfterFlush();
        storage.Persist(acceptor.StateToSave());
        acceptor.OnVoteRequest(new VoteRequest { Term = 2 });
        var oldHistory = storage.State.History;
        Assert.Equal(written, storage.State.FlushLsnAtSave);

        var elected = Elected(2, cut, new TermSwitch(1, Start), new TermSwitch(2, cut));
        var newHistory = TermHistory.FromProto(elected.TermHistory);
        storage.CrashAt(crash);
        try { acceptor.OnElected(elected); }
        catch (SimulatedCrash) { }
        store.Dispose(); // the process is gone

        await using var registry = RestartedNode.Load(_dataDir);
        Assert.Empty(registry.Broken);
        var timeline = registry.Get(new TimelineKey { TenantId = _id.TenantId, TimelineId = _id.TimelineId });
        var status = timeline.Status();
        var flush = new Lsn(status.FlushLsn);
        var history = TermHistory.FromProto(status.TermHistory);

        // What it serves is term 1's WAL (never the zeroes of a cut), and its history says so.
        Assert.True(flush >= cut && flush <= written, $"flush {flush} outside [{cut}, {written}]");
        Assert.Equal(wal.ToArray().AsSpan(0, (int)(flush - Start)).ToArray(), RestartedNode.ReadWal(timeline, Start, flush));
        Assert.True(history.ToString() == oldHistory.ToString() || (history.ToString() == newHistory.ToString() && flush == cut),
            $"history {history} with flush {flush} (old history {oldHistory}, new {newHistory}, cut at {cut})");
        switch (crash)
        {
            case CrashAt.BeforeAnyStep or CrashAt.AfterForgettingTheFlushPosition:
                Assert.Equal(written, flush);
                Assert.Equal(oldHistory.ToString(), history.ToString());
                break;
            case CrashAt.WhileCutting when cutSpansSegments:
                Assert.True(flush < written, $"flush {flush}: the segments after the cut's were deleted");
                break;
            case CrashAt.WhileZeroing:
                Assert.Equal(cut, flush);
                break;
            case CrashAt.ZeroedOutOfOrder:
                Assert.True(flush < written, $"flush {flush}: WAL after the cut was partly zeroed");
                break;
            case CrashAt.AfterCutting:
                Assert.Equal(cut, flush);
                Assert.Equal(oldHistory.ToString(), history.ToString());
                break;
            case CrashAt.Never:
                Assert.Equal(cut, flush);
                Assert.Equal(newHistory.ToString(), history.ToString());
                break;
        }

        // The proposer retries: the restarted safekeeper finds the same cut and ends where an
        // uninterrupted election would have.
        await timeline.ElectedAsync(elected, CancellationToken.None);
        status = timeline.Status();
        Assert.Equal(cut, new Lsn(status.FlushLsn));
        Assert.Equal(newHistory.ToString(), TermHistory.FromProto(status.TermHistory).ToString());
        Assert.Equal(wal.ToArray().AsSpan(0, (int)(cut - Start)).ToArray(), RestartedNode.ReadWal(timeline, Start, cut));
    }

    private static ProposerElected Elected(ulong term, Lsn start, params TermSwitch[] history)
    {
        var elected = new ProposerElected { Term = term, StartStreamingAt = start.Value };
        elected.TermHistory.AddRange(new TermHistory(history).ToProto());
        return elected;
    }

    private sealed class SimulatedCrash() : Exception("simulated crash");

    /// <summary>Timeline storage that dies before a chosen durable step (or halfway through a WAL cut).</summary>
    private sealed class CrashingStorage(TimelineStorage inner, SegmentFiles files) : IAcceptorStorage
    {
        private int? _stepsLeft;
        private CrashAt _crash;

        public void CrashAt(CrashAt crash)
        {
            _crash = crash;
            _stepsLeft = crash switch
            {
                ElectionCrashTests.CrashAt.BeforeAnyStep => 0,
                ElectionCrashTests.CrashAt.AfterForgettingTheFlushPosition or ElectionCrashTests.CrashAt.WhileCutting
                    or ElectionCrashTests.CrashAt.WhileZeroing or ElectionCrashTests.CrashAt.ZeroedOutOfOrder => 1,
                ElectionCrashTests.CrashAt.AfterCutting => 2,
                _ => null,
            };
        }

        public AcceptorState State => inner.State;
        public Lsn WriteLsn => inner.WriteLsn;
        public Lsn FlushLsn => inner.FlushLsn;
        public void Write(Lsn begin, ReadOnlySpan<byte> data) => inner.Write(begin, data);
        public void ResetWal(Lsn start) { Step(); inner.ResetWal(start); }
        public void Persist(AcceptorState state) { Step(); inner.Persist(state); }

        public void Truncate(Lsn end)
        {
            if (_stepsLeft == 0 && _crash is ElectionCrashTests.CrashAt.WhileCutting or ElectionCrashTests.CrashAt.WhileZeroing or ElectionCrashTests.CrashAt.ZeroedOutOfOrder)
            {
                // A cut deletes the later segments first, then zeroes the rest of the cut's segment.
                var segmentEnd = G.SegmentStart(G.SegmentNumber(end) + 1);
                var mid = Lsn.Min(end + 100_000UL, segmentEnd);
                if (_crash != ElectionCrashTests.CrashAt.ZeroedOutOfOrder)
                    foreach (var segment in files.List().Where(s => s > G.SegmentNumber(end)))
                        File.Delete(files.Find(segment)!);
                if (_crash == ElectionCrashTests.CrashAt.WhileZeroing) Zero(end, mid);
                if (_crash == ElectionCrashTests.CrashAt.ZeroedOutOfOrder) Zero(mid, segmentEnd);
                throw new SimulatedCrash();
            }
            Step();
            inner.Truncate(end);
        }

        private void Zero(Lsn from, Lsn to)
        {
            using var handle = File.OpenHandle(files.Find(G.SegmentNumber(from))!, FileMode.Open, FileAccess.Write, FileShare.ReadWrite);
            RandomAccess.Write(handle, new byte[to - from], G.SegmentOffset(from));
        }

        private void Step()
        {
            if (_stepsLeft is null) return;
            if (_stepsLeft == 0) throw new SimulatedCrash();
            _stepsLeft--;
        }
    }
}
