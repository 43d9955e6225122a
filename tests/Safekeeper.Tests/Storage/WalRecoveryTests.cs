using Storage.Core;
using Storage.Core.Storage;
using Storage.Core.Wal;
using Storage.Safekeeper.Consensus;
using Storage.Safekeeper.Storage;

namespace Storage.Safekeeper.Tests.Storage;

/// <summary>Where a safekeeper's WAL ends after a crash, and when the files are too damaged to trust.</summary>
public class WalRecoveryTests : IDisposable
{
    private static readonly Lsn Start = new(0x0100_0000);
    private readonly string _dir = Directory.CreateTempSubdirectory("wal-recovery-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private (SegmentFiles Files, Lsn RecordsEnd, Lsn Written) WriteWalEndingInsideARecord()
    {
        var files = new SegmentFiles(_dir, WalGeometry.Default);
        var builder = new WalBuilder(Start);
        var workload = new SyntheticTransactions(builder, new Random(3));
        var whole = workload.Next(100_000);
        var recordsEnd = builder.EndLsn;
        builder.AppendNoop(5000);
        var next = builder.TakeBytes();
        using var wal = new WalStore(files, Start);
        wal.Write(Start, whole);
        wal.Write(recordsEnd, next.AsSpan(0, 1000)); // a proposer streamed part of the next record
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
    public void Flushed_bytes_of_a_partial_record_up_to_the_saved_flush_position_are_kept()
    {
        var (files, _, written) = WriteWalEndingInsideARecord();
        var state = AcceptorState.New(Start) with { FlushLsnAtSave = written };
        Assert.Equal(written, WalRecovery.FindEnd(files, state));
    }

    [Fact]
    public void A_missing_segment_below_the_saved_flush_position_is_corruption()
    {
        var (files, _, written) = WriteWalEndingInsideARecord();
        var beyond = WalGeometry.Default.SegmentStart(WalGeometry.Default.SegmentNumber(Start) + 1) + 100UL;
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
}
