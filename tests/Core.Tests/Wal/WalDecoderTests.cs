using System.Buffers.Binary;
using Storage.Core.Wal;
using static Storage.Core.Tests.Wal.WalTestHelpers;

namespace Storage.Core.Tests.Wal;

public class WalDecoderTests
{
    [Fact]
    public void Decodes_records_spanning_pages()
    {
        var (builder, built) = BuildNoops(Segment1, 24, 26, 100, 300, 8000, 8192, 20_000, 50, 65_000, 33);
        var records = DecodeAll(Segment1, builder.TakeBytes());

        Assert.Equal(built.Count, records.Count);
        for (int i = 0; i < built.Count; i++)
        {
            Assert.Equal(built[i].Start, records[i].Lsn);
            Assert.Equal(built[i].End, records[i].EndLsn);
            Assert.Equal("XLOG", records[i].RmgrName);
            Assert.Equal(XlogInfo.Noop, records[i].RmgrInfo);
            Assert.Equal(i == 0 ? Lsn.Invalid : built[i - 1].Start, records[i].Prev);
        }
        Assert.Equal(Segment1 + (ulong)WalFormat.LongPageHeaderSize, records[0].Lsn);
        Assert.Equal(20_000u, records[6].TotalLength);
        Assert.True(records[6].SpansPages(WalGeometry.Default));
        Assert.Equal(65_000 - 29, records[8].MainData.Length);
        // Main data survives the page headers in between.
        var data = records[8].MainData.Span;
        for (int i = 0; i < data.Length; i++) Assert.Equal((byte)(i * 31 + 7), data[i]);
    }

    [Fact]
    public void Record_ending_exactly_at_page_end_ends_there()
    {
        // First page has 8192 - 40 bytes after the long header.
        var (builder, built) = BuildNoops(Segment1, WalGeometry.PageSize - WalFormat.LongPageHeaderSize, 100);
        var bytes = builder.TakeBytes();
        var records = DecodeAll(Segment1, bytes);
        Assert.Equal(Segment1 + (ulong)WalGeometry.PageSize, records[0].EndLsn);
        Assert.Equal(built[0].End, records[0].EndLsn);
        Assert.Equal(Segment1 + (ulong)(WalGeometry.PageSize + WalFormat.ShortPageHeaderSize), records[1].Lsn);
        // The next page does not claim continuation data.
        var page2 = XLogPageHeader.Parse(bytes.AsSpan(WalGeometry.PageSize));
        Assert.False(page2.IsContinuation);
        Assert.Equal(0u, page2.RemainingLength);
    }

    [Fact]
    public void Decodes_records_spanning_segments()
    {
        var builder = new WalBuilder(Segment1);
        var built = new List<(Lsn Start, Lsn End)>();
        while (builder.EndLsn < Segment2 + 1000UL) built.Add(builder.AppendNoop(700_000));
        var bytes = builder.TakeBytes();
        var records = DecodeAll(Segment1, bytes);

        Assert.Equal(built.Select(b => b.Start), records.Select(r => r.Lsn));
        var crossing = Assert.Single(records, r => r.Lsn < Segment2 && r.EndLsn > Segment2);
        var segment2Header = XLogPageHeader.Parse(bytes.AsSpan((int)(Segment2 - Segment1)));
        Assert.True(segment2Header.IsLong);
        Assert.True(segment2Header.IsContinuation);
        Assert.True(segment2Header.RemainingLength > 0);
        Assert.True(crossing.TotalLength == 700_000);
    }

    [Fact]
    public void Feeding_one_byte_at_a_time_gives_the_same_records()
    {
        var (builder, _) = BuildNoops(Segment1, 100, 9000, 24, 17_000, 40, 8100, 300);
        builder.AppendCommit(1234, DateTimeOffset.UtcNow);
        builder.AppendSwitch();
        builder.AppendNoop(500);
        var bytes = builder.TakeBytes();

        var whole = DecodeAll(Segment1, bytes);
        var byteByByte = DecodeAll(Segment1, bytes, chunkSize: 1);
        var odd = DecodeAll(Segment1, bytes, chunkSize: 4093);

        Assert.Equal(10, whole.Count);
        Assert.Equal(whole.Select(Describe), byteByByte.Select(Describe));
        Assert.Equal(whole.Select(Describe), odd.Select(Describe));
    }

    private static string Describe(WalRecord r) => $"{r.Lsn} {r.EndLsn} {r.TotalLength} {r.Crc:X8} {WalDumpFormatter.Format(r)}";

    [Fact]
    public void Switch_record_skips_to_next_segment()
    {
        var builder = new WalBuilder(Segment1);
        builder.AppendNoop(100);
        var (switchStart, switchEnd) = builder.AppendSwitch();
        var after = builder.AppendNoop(100);
        Assert.Equal(Segment2, switchEnd);
        Assert.Equal(Segment2 + (ulong)WalFormat.LongPageHeaderSize, after.Start);

        var records = DecodeAll(Segment1, builder.TakeBytes());
        Assert.Equal(3, records.Count);
        Assert.True(records[1].IsSwitch);
        Assert.Equal(switchStart, records[1].Lsn);
        Assert.Equal(Segment2, records[1].EndLsn);
        Assert.Equal(after.Start, records[2].Lsn);
        Assert.Equal(switchStart, records[2].Prev);
    }

    [Fact]
    public void Commit_record_exposes_its_timestamp()
    {
        var time = new DateTimeOffset(2026, 11, 21, 12, 34, 56, TimeSpan.Zero).AddTicks(1234560);
        var builder = new WalBuilder(Segment1);
        builder.AppendCommit(777, time);
        builder.AppendAbort(778, time.AddSeconds(1));
        var records = DecodeAll(Segment1, builder.TakeBytes());

        var commit = XactRecord.TryFrom(records[0]);
        Assert.NotNull(commit);
        Assert.Equal(XactKind.Commit, commit.Kind);
        Assert.Equal(777u, commit.Xid);
        Assert.Equal(time, commit.Time);
        Assert.Equal("Transaction", records[0].RmgrName);
        Assert.Equal(34u, records[0].TotalLength);

        var abort = XactRecord.TryFrom(records[1]);
        Assert.NotNull(abort);
        Assert.True(abort.IsAbort);
        Assert.Equal(time.AddSeconds(1), abort.Time);
        Assert.Null(CheckpointRecord.TryFrom(records[0]));
    }

    [Fact]
    public void Corrupted_data_fails_the_crc_check()
    {
        var (builder, built) = BuildNoops(Segment1, 100, 200, 300);
        var bytes = builder.TakeBytes();
        int offset = (int)(built[1].Start - Segment1) + 50; // inside record 2's main data
        bytes[offset] ^= 0x01;

        var decoder = new WalDecoder(Segment1);
        decoder.Feed(bytes);
        Assert.True(decoder.TryDecodeNext(out _));
        var e = Assert.Throws<WalDecodeException>(() => decoder.TryDecodeNext(out _));
        Assert.Equal($"invalid record CRC at {built[1].Start}", e.Message[..e.Message.IndexOf(" (", StringComparison.Ordinal)]);
        Assert.Equal(built[1].Start, e.Lsn);
        Assert.False(decoder.ReachedEndOfWal);
    }

    [Fact]
    public void Zero_header_means_end_of_wal()
    {
        var (builder, built) = BuildNoops(Segment1, 100, 200);
        var bytes = builder.TakeBytes().Concat(new byte[3 * WalGeometry.PageSize]).ToArray();
        var decoder = new WalDecoder(Segment1);
        var records = DecodeAll(Segment1, bytes, decoder: decoder);
        Assert.Equal(2, records.Count);
        Assert.True(decoder.ReachedEndOfWal);
        Assert.Equal(built[1].End, decoder.NextLsn);
        Assert.False(decoder.TryDecodeNext(out _));
    }

    [Fact]
    public void Zeroed_page_after_a_record_ending_at_page_end_means_end_of_wal()
    {
        var (builder, _) = BuildNoops(Segment1, WalGeometry.PageSize - WalFormat.LongPageHeaderSize);
        var bytes = builder.TakeBytes().Concat(new byte[WalGeometry.PageSize]).ToArray();
        var decoder = new WalDecoder(Segment1);
        Assert.Single(DecodeAll(Segment1, bytes, decoder: decoder));
        Assert.True(decoder.ReachedEndOfWal);
    }

    [Fact]
    public void Waits_for_more_bytes_without_claiming_end_of_wal()
    {
        var (builder, _) = BuildNoops(Segment1, 20_000);
        var bytes = builder.TakeBytes();
        var decoder = new WalDecoder(Segment1);
        decoder.Feed(bytes.AsSpan(0, bytes.Length - 10));
        Assert.False(decoder.TryDecodeNext(out _));
        Assert.False(decoder.ReachedEndOfWal);
        decoder.Feed(bytes.AsSpan(bytes.Length - 10));
        Assert.True(decoder.TryDecodeNext(out var record));
        Assert.Equal(20_000u, record.TotalLength);
    }

    [Fact]
    public void Prev_link_mismatch_is_detected()
    {
        var (builder, built) = BuildNoops(Segment1, 100, 200, 300);
        var bytes = builder.TakeBytes();
        int offset = (int)(built[2].Start - Segment1);
        var record = bytes.AsSpan(offset, 300);
        BinaryPrimitives.WriteUInt64LittleEndian(record[8..], built[0].Start.Value); // points one record too far back
        BinaryPrimitives.WriteUInt32LittleEndian(record[20..], WalDecoder.ComputeRecordCrc(record)); // keep the CRC valid

        var decoder = new WalDecoder(Segment1);
        decoder.Feed(bytes);
        Assert.True(decoder.TryDecodeNext(out _));
        Assert.True(decoder.TryDecodeNext(out _));
        var e = Assert.Throws<WalDecodeException>(() => decoder.TryDecodeNext(out _));
        Assert.Contains($"incorrect prev-link {built[0].Start} at {built[2].Start}", e.Message);
    }

    [Fact]
    public void Invalid_record_length_is_reported()
    {
        var (builder, built) = BuildNoops(Segment1, 100, 200);
        var bytes = builder.TakeBytes();
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan((int)(built[1].Start - Segment1)), 10);
        var decoder = new WalDecoder(Segment1);
        decoder.Feed(bytes);
        Assert.True(decoder.TryDecodeNext(out _));
        var e = Assert.Throws<WalDecodeException>(() => decoder.TryDecodeNext(out _));
        Assert.Equal($"invalid record length at {built[1].Start}: wanted 24, got 10", e.Message);
    }

    [Fact]
    public void Starting_at_a_segment_boundary_skips_the_continuation_of_an_earlier_record()
    {
        // A 100 KB record starts ~40 KB before segment 2 and continues over several pages of it.
        var builder = new WalBuilder(Segment1);
        while (builder.EndLsn < Segment2 - 1_100_000UL) builder.AppendNoop(1_000_000);
        while (builder.EndLsn < Segment2 - 40_000UL) builder.AppendNoop(1_000);
        var spanning = builder.AppendNoop(100_000);
        var following = builder.AppendNoop(500);
        builder.AppendNoop(20_000);
        Assert.True(spanning.Start < Segment2 && spanning.End > Segment2 + (ulong)(2 * WalGeometry.PageSize));
        var bytes = builder.TakeBytes();

        var all = DecodeAll(Segment1, bytes);
        var fromSegment2 = DecodeAll(Segment2, bytes[(int)(Segment2 - Segment1)..], chunkSize: 777);

        Assert.Equal(following.Start, fromSegment2[0].Lsn);
        Assert.Equal(all.Where(r => r.Lsn >= Segment2).Select(r => r.Lsn), fromSegment2.Select(r => r.Lsn));
        Assert.Equal(2, fromSegment2.Count);
    }

    [Fact]
    public void Starting_at_a_page_boundary_inside_a_record_skips_to_the_next_record()
    {
        var (builder, built) = BuildNoops(Segment1, 100, 30_000, 200);
        var bytes = builder.TakeBytes();
        var page2 = Segment1 + (ulong)WalGeometry.PageSize;
        var records = DecodeAll(page2, bytes[WalGeometry.PageSize..], chunkSize: 1000);
        Assert.Equal(built[2].Start, records.Single().Lsn);
    }

    [Fact]
    public void Wrong_continuation_page_is_reported()
    {
        var (builder, built) = BuildNoops(Segment1, 20_000);
        var bytes = builder.TakeBytes();
        // Clear the XLP_FIRST_IS_CONTRECORD flag of page 2.
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(WalGeometry.PageSize + 2), WalFormat.XlpBkpRemovable);
        var decoder = new WalDecoder(Segment1);
        decoder.Feed(bytes);
        var e = Assert.Throws<WalDecodeException>(() => decoder.TryDecodeNext(out _));
        Assert.Contains("there is no contrecord flag at 0/1002000", e.Message);
    }
}
