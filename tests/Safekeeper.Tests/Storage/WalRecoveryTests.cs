using Storage.Core;
using Storage.Core.Api;
using Storage.Core.Storage;
using Storage.Core.Wal;
using Storage.Proto.Safekeeper;
using Storage.Safekeeper.Consensus;
using Storage.Safekeeper.Storage;

namespace Storage.Safekeeper.Tests.Storage;

/// <summary>Where a safekeeper's WAL ends after a crash, and when the files are too damaged to trust.</summary>
public class WalRecoveryTests : IDisposable
{
    private static readonly WalGeometry G = WalGeometry.Default;
    private static readonly Lsn Start = new(0x0100_0000);
    private readonly string _dataDir = Directory.CreateTempSubdirectory("wal-recovery-").FullName;
    private readonly TimelineIdentity _id = new(TimelineIds.New(), TimelineIds.New(), 150000, 42, G.SegmentSize);
    private readonly string _dir;

    public WalRecoveryTests()
    {
        _dir = Path.Combine(_dataDir, _id.TenantId, _id.TimelineId);
        Directory.CreateDirectory(_dir);
    }

    public void Dispose() => Directory.Delete(_dataDir, recursive: true);

    private TimelineKey Key => new() { TenantId = _id.TenantId, TimelineId = _id.TimelineId };

    /// <summary>Whole records, then 1000 bytes of the next one (as an older proposer that split records could leave).</summary>
    private (SegmentFiles Files, Lsn RecordsEnd, Lsn Written) WriteWalEndingInsideARecord()
    {
        var files = new SegmentFiles(_dir, G);
        var builder = new WalBuilder(Start);
        var workload = new SyntheticTransactions(builder, new Random(3));
        var whole = workload.Next(100_000);
        var recordsEnd = builder.EndLsn;
        builder.AppendNoop(5000);
        var next = builder.TakeBytes();
        using var wal = new WalStore(files, Start);
        wal.Write(Start, whole);
        wal.Write(recordsEnd, next.AsSpan(0, 1000));
        wal.Flush();
        return (files, recordsEnd, recordsEnd + 1000UL);
    }

    [Fact]
    public void Without_a_saved_flush_position_the_end_is_the_last_complete_record()
    {
        var (files, recordsEnd, _) = WriteWalEndingInsideARecord();
        Assert.Equal(recordsEnd, WalRecovery.FindEnd(files, AcceptorState.New(Start)));
    }

    [Fact]
    public void An_incomplete_record_is_dropped_even_below_the_saved_flush_position()
    {
        var (files, recordsEnd, written) = WriteWalEndingInsideARecord();
        var state = AcceptorState.New(Start) with { FlushLsnAtSave = written };
        Assert.Equal(recordsEnd, WalRecovery.FindEnd(files, state));
    }

    [Fact]
    public async Task A_dropped_tail_is_zeroed_and_forgotten_durably_before_the_timeline_serves()
    {
        var (_, recordsEnd, written) = WriteWalEndingInsideARecord();
        ControlFile.Save(_dir, _id, AcceptorState.New(Start) with { FlushLsnAtSave = written });

        await using (var registry = RestartedNode.Load(_dataDir))
        {
            Assert.Empty(registry.Broken);
            var timeline = registry.Get(Key);
            Assert.Equal(recordsEnd, new Lsn(timeline.Status().FlushLsn));
            Assert.Equal(0, timeline.ReadWal(recordsEnd, new byte[4096])); // nothing served past the end
        }
        // On disk: the stale bytes are zeroes and the control file no longer claims them, so a
        // later recovery cannot take them for WAL either.
        var segment = File.ReadAllBytes(new SegmentFiles(_dir, G).Find(G.SegmentNumber(Start))!);
        Assert.False(segment.AsSpan(G.SegmentOffset(recordsEnd)).ContainsAnyExcept((byte)0), "stale bytes after the recovered end are still on disk");
        Assert.True(ControlFile.Load(_dir).State.FlushLsnAtSave <= recordsEnd);
    }

    [Fact]
    public async Task An_incomplete_record_below_the_commit_lsn_is_data_loss()
    {
        var (files, _, written) = WriteWalEndingInsideARecord();
        var state = AcceptorState.New(Start) with { CommitLsn = written, FlushLsnAtSave = written };
        Assert.Contains("below the commit LSN", Assert.Throws<CorruptFileException>(() => WalRecovery.FindEnd(files, state)).Message);

        ControlFile.Save(_dir, _id, state);
        await using var registry = RestartedNode.Load(_dataDir);
        var broken = Assert.Throws<Core.Errors.DataLossException>(() => registry.Get(Key));
        Assert.Contains("below the commit LSN", broken.Message);
    }

    [Fact]
    public async Task WAL_found_after_a_restart_is_fdatasynced_before_the_timeline_serves()
    {
        // A killed incarnation wrote WAL over three segments and never fdatasync'd it; the OS
        // kept it in the page cache. It also left an unfinished segment preallocation.
        var files = new SegmentFiles(_dir, G);
        var builder = new WalBuilder(Start);
        var wal = new SyntheticTransactions(builder, new Random(4)).Next(2 * G.SegmentSize + 1000);
        var end = builder.EndLsn;
        using (var store = new WalStore(files, Start)) store.Write(Start, wal);
        File.WriteAllBytes(files.PreallocatingPath(G.SegmentNumber(end) + 1), new byte[4096]);
        ControlFile.Save(_dir, _id, AcceptorState.New(Start));

        var sync = new RecordingSync();
        await using var registry = RestartedNode.Load(_dataDir, sync);
        Assert.Equal(end, new Lsn(registry.Get(Key).Status().FlushLsn));
        var segments = Enumerable.Range(1, 3).Select(s => Path.GetFileName(files.Find((ulong)s)!)).ToArray();
        Assert.Equal([.. segments, "directory"], sync.Calls);
        Assert.Empty(files.UnfinishedPreallocations());
    }

    [Fact]
    public void A_missing_segment_below_the_saved_flush_position_is_corruption()
    {
        var (files, _, written) = WriteWalEndingInsideARecord();
        var beyond = G.SegmentStart(G.SegmentNumber(Start) + 1) + 100UL;
        var state = AcceptorState.New(Start) with { FlushLsnAtSave = beyond };
        var error = Assert.Throws<CorruptFileException>(() => WalRecovery.FindEnd(files, state));
        Assert.Contains("is missing", error.Message);
        Assert.True(written < beyond);
    }

    [Fact]
    public void WAL_ending_below_the_commit_lsn_is_corruption()
    {
        var (files, recordsEnd, _) = WriteWalEndingInsideARecord();
        var state = AcceptorState.New(Start) with { CommitLsn = recordsEnd + 100_000UL, FlushLsnAtSave = Start };
        var error = Assert.Throws<CorruptFileException>(() => WalRecovery.FindEnd(files, state));
        Assert.Contains("below the commit LSN", error.Message);
    }

    /// <summary>Records which files recovery syncs (and syncs them).</summary>
    private sealed class RecordingSync : DiskSync
    {
        public List<string> Calls { get; } = new();
        public override void File(string path) { Calls.Add(Path.GetFileName(path)); base.File(path); }
        public override void Directory(string path) { Calls.Add("directory"); base.Directory(path); }
    }
}
