using Storage.Core.Wal;
using static Storage.Core.Tests.Wal.WalTestHelpers;

namespace Storage.Core.Tests.Wal;

public class WalEndTests
{
    [Fact]
    public void Zero_tail_ends_after_the_last_record()
    {
        var (builder, built) = BuildNoops(Segment1, 100, 20_000, 300);
        var bytes = builder.TakeBytes().Concat(new byte[50_000]).ToArray();
        var result = WalEnd.Scan(new MemoryStream(bytes), Segment1);
        Assert.Equal(built[2].End, result.EndLsn);
        Assert.Equal(built[2].Start, result.LastRecordLsn);
        Assert.Equal(3, result.RecordCount);
        Assert.Equal(WalEndReason.ZeroedTail, result.Reason);
        Assert.Equal(built[2].End, WalEnd.Find(new MemoryStream(bytes), Segment1));
    }

    [Fact]
    public void Torn_last_record_is_not_counted()
    {
        var (builder, built) = BuildNoops(Segment1, 100, 200, 20_000);
        var bytes = builder.TakeBytes();
        var torn = bytes[..(bytes.Length - 5000)];
        var result = WalEnd.Scan(new MemoryStream(torn), Segment1);
        Assert.Equal(built[1].End, result.EndLsn);
        Assert.Equal(WalEndReason.EndOfInput, result.Reason);
    }

    [Fact]
    public void Torn_record_followed_by_zeros_is_not_counted()
    {
        var (builder, built) = BuildNoops(Segment1, 100, 200, 20_000);
        var bytes = builder.TakeBytes();
        Array.Clear(bytes, bytes.Length - 9000, 9000); // the last pages never made it to disk
        var result = WalEnd.Scan(new MemoryStream(bytes), Segment1);
        Assert.Equal(built[1].End, result.EndLsn);
        Assert.Equal(WalEndReason.InvalidRecord, result.Reason);
        Assert.Contains("zeroed page", result.Detail);
    }

    [Fact]
    public void Corrupt_record_ends_wal_before_it()
    {
        var (builder, built) = BuildNoops(Segment1, 100, 200, 300);
        var bytes = builder.TakeBytes();
        bytes[(int)(built[2].Start - Segment1) + 40] ^= 0xFF;
        var result = WalEnd.Scan(new MemoryStream(bytes), Segment1);
        Assert.Equal(built[1].End, result.EndLsn);
        Assert.Equal(WalEndReason.InvalidRecord, result.Reason);
        Assert.Contains("invalid record CRC", result.Detail);
    }

    [Fact]
    public void Empty_wal_ends_at_the_start()
    {
        Assert.Equal(Segment1, WalEnd.Find(new MemoryStream(new byte[WalGeometry.PageSize]), Segment1));
        Assert.Equal(Segment1, WalEnd.Find(new MemoryStream(), Segment1));
    }

    [Fact]
    public void Scan_can_start_at_a_record_boundary()
    {
        var (builder, built) = BuildNoops(Segment1, 100, 200, 300);
        var bytes = builder.TakeBytes();
        var from = built[1].Start;
        var result = WalEnd.Scan(new MemoryStream(bytes[(int)(from - Segment1)..]), from, previousRecord: built[0].Start);
        Assert.Equal(built[2].End, result.EndLsn);
        Assert.Equal(2, result.RecordCount);
    }
}
