using System.Buffers.Binary;
using Storage.Core.Wal;
using static Storage.Core.Tests.Wal.WalTestHelpers;

namespace Storage.Core.Tests.Wal;

public class XLogPageHeaderTests
{
    private static byte[] FirstPage()
    {
        var (builder, _) = BuildNoops(Segment1, 100);
        return builder.TakeBytes();
    }

    [Fact]
    public void Parses_long_header_at_segment_start()
    {
        var bytes = FirstPage();
        Assert.Equal(WalFormat.LongPageHeaderSize, XLogPageHeader.SizeNeeded(bytes));
        var header = XLogPageHeader.Parse(bytes);
        Assert.True(header.IsLong);
        Assert.False(header.IsContinuation);
        Assert.Equal(WalFormat.PageMagic, header.Magic);
        Assert.Equal(Segment1, header.PageAddress);
        Assert.Equal(1u, header.TimeLineId);
        Assert.Equal((uint)WalGeometry.DefaultSegmentSize, header.SegmentSize);
        Assert.Equal((uint)WalGeometry.PageSize, header.BlockSize);
        Assert.Equal(7_000_000_000_000_000_001UL, header.SystemId);
        header.Validate(Segment1, WalGeometry.Default);
    }

    [Fact]
    public void Parses_short_continuation_header()
    {
        var (builder, _) = BuildNoops(Segment1, 10_000);
        var bytes = builder.TakeBytes();
        var page2 = bytes.AsSpan(WalGeometry.PageSize);
        Assert.Equal(WalFormat.ShortPageHeaderSize, XLogPageHeader.SizeNeeded(page2));
        var header = XLogPageHeader.Parse(page2);
        Assert.False(header.IsLong);
        Assert.True(header.IsContinuation);
        // 10000 bytes minus what fit on the first page after the 40-byte long header.
        Assert.Equal((uint)(10_000 - (WalGeometry.PageSize - WalFormat.LongPageHeaderSize)), header.RemainingLength);
        header.Validate(Segment1 + (ulong)WalGeometry.PageSize, WalGeometry.Default);
    }

    [Fact]
    public void Rejects_wrong_magic()
    {
        var bytes = FirstPage();
        BinaryPrimitives.WriteUInt16LittleEndian(bytes, 0xD10D); // PostgreSQL 14's magic
        var e = Assert.Throws<WalDecodeException>(() => XLogPageHeader.Parse(bytes).Validate(Segment1, WalGeometry.Default));
        Assert.Contains("invalid magic number D10D", e.Message);
        Assert.Equal(Segment1, e.Lsn);
    }

    [Fact]
    public void Rejects_unexpected_pageaddr()
    {
        var bytes = FirstPage();
        var e = Assert.Throws<WalDecodeException>(() => XLogPageHeader.Parse(bytes).Validate(Segment2, WalGeometry.Default));
        Assert.Contains("unexpected pageaddr 0/1000000", e.Message);
    }

    [Fact]
    public void Rejects_unknown_info_bits()
    {
        var bytes = FirstPage();
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(2), 0x0012);
        var e = Assert.Throws<WalDecodeException>(() => XLogPageHeader.Parse(bytes).Validate(Segment1, WalGeometry.Default));
        Assert.Contains("invalid info bits 0012", e.Message);
    }

    [Fact]
    public void Rejects_segment_start_without_long_header()
    {
        var bytes = FirstPage();
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(2), 0x0000);
        var e = Assert.Throws<WalDecodeException>(() => XLogPageHeader.Parse(bytes).Validate(Segment1, WalGeometry.Default));
        Assert.Contains("without long header", e.Message);
    }

    [Fact]
    public void Rejects_wrong_segment_size()
    {
        var bytes = FirstPage();
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(32), 1024 * 1024);
        var e = Assert.Throws<WalDecodeException>(() => XLogPageHeader.Parse(bytes).Validate(Segment1, WalGeometry.Default));
        Assert.Contains("incorrect segment size", e.Message);
    }

    [Fact]
    public void Zero_page_is_recognised()
    {
        Assert.True(XLogPageHeader.Parse(new byte[WalFormat.ShortPageHeaderSize]).IsZero);
    }
}
