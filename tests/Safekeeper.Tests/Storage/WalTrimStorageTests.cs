using Google.Protobuf;
using Storage.Core;
using Storage.Core.Consensus;
using Storage.Core.Storage;
using Storage.Core.Wal;
using Storage.Proto.Safekeeper;
using Storage.Safekeeper.Consensus;
using Storage.Safekeeper.Storage;

namespace Storage.Safekeeper.Tests.Storage;

/// <summary>The trim horizon, deleting leading segments, and recovery and control files once they are gone.</summary>
public class WalTrimStorageTests : IDisposable
{
    private static readonly WalGeometry G = WalGeometry.Default;
    private static readonly Lsn Start = new(0x0100_0000); // segment 1
    private readonly string _dir = Directory.CreateTempSubdirectory("wal-trim-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void The_horizon_is_the_lowest_of_remote_consistent_backup_and_commit()
    {
        Lsn a = new(0x500_0000), b = new(0x600_0000), c = new(0x700_0000), flush = new(0x800_0000);
        Assert.Equal(a, TrimHorizon.Compute(a, b, c, flush));
        Assert.Equal(a, TrimHorizon.Compute(b, a, c, flush));
        Assert.Equal(a, TrimHorizon.Compute(c, b, a, flush));
        Assert.Equal(a, TrimHorizon.Compute(c, c, c, a)); // never past the flush position
    }

    [Fact]
    public void Nothing_is_trimmed_until_a_pageserver_reported()
    {
        Assert.Equal(Lsn.Zero, TrimHorizon.Compute(Lsn.Zero, new(0x600_0000), new(0x700_0000), new(0x700_0000)));
        Assert.Equal(Start, TrimHorizon.NewLocalStart(Lsn.Zero, Start, G));
    }

    [Fact]
    public void The_local_start_is_the_horizon_segment_start_and_never_moves_back()
    {
        Assert.Equal(new Lsn(0x300_0000), TrimHorizon.NewLocalStart(new(0x3AB_CDEF), Start, G)); // segment 3 holds the horizon: kept
        Assert.Equal(new Lsn(0x400_0000), TrimHorizon.NewLocalStart(new(0x300_0000), new(0x400_0000), G));
        Assert.Equal(Start + 100UL, TrimHorizon.NewLocalStart(Start + 200UL, Start + 100UL, G)); // a mid-segment timeline start stays
    }

    [Fact]
    public void Leading_segments_are_deleted_and_recovery_finds_the_same_end_without_them()
    {
        var files = new SegmentFiles(_dir, G);
        var builder = new WalBuilder(Start);
        var wal = new SyntheticTransactions(builder, new Random(5)).Next(3 * G.SegmentSize + 5000); // segments 1..4
        var end = builder.EndLsn;
        using (var store = new WalStore(files, Start))
        {
            store.Write(Start, wal);
            store.Flush();
            Assert.Throws<InvalidOperationException>(() => store.RemoveBelow(G.SegmentNumber(end) + 1)); // the flush segment stays
            Assert.Equal([1UL, 2UL], store.RemoveBelow(3));
            Assert.Equal([3UL, 4UL], files.List());
        }
        var state = AcceptorState.New(Start) with { LocalStartLsn = G.SegmentStart(3), CommitLsn = G.SegmentStart(3), FlushLsnAtSave = end };
        Assert.Equal(end, WalRecovery.FindEnd(files, state));

        // A crash after saving a later local start but before deleting: the stale file is ignored.
        var later = state with { LocalStartLsn = G.SegmentStart(4) };
        Assert.Equal(end, WalRecovery.FindEnd(files, later));
    }

    [Fact]
    public void Control_file_keeps_the_local_start_and_reads_version_1_files()
    {
        var id = new TimelineIdentity(new string('a', 32), new string('b', 32), 150000, 42, G.SegmentSize);
        var state = AcceptorState.New(Start) with { LocalStartLsn = new(0x500_0000), RemoteConsistentLsn = new(0x5AB_0000) };
        ControlFile.Save(_dir, id, state);
        var (_, loaded) = ControlFile.Load(_dir);
        Assert.Equal(state.LocalStartLsn, loaded.LocalStartLsn);
        Assert.Equal(state.RemoteConsistentLsn, loaded.RemoteConsistentLsn);

        // Version 1 had no local start: the WAL then began at the timeline start.
        var v1 = new ControlFileData
        {
            Timeline = new TimelineKey { TenantId = id.TenantId, TimelineId = id.TimelineId },
            Term = 3, TimelineStartLsn = Start.Value, CommitLsn = Start.Value, FlushLsnAtSave = Start.Value, WalSegmentSize = (uint)G.SegmentSize,
        };
        ChecksummedFile.Write(Path.Combine(_dir, ControlFile.FileName), "SKCF", 1, v1.ToByteArray());
        var (_, old) = ControlFile.Load(_dir);
        Assert.Equal(Start, old.LocalStartLsn);
        Assert.Equal(3UL, old.Term);
        Assert.Equal(Lsn.Zero, old.RemoteConsistentLsn);
    }
}
