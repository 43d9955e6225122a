using Storage.Core;
using Storage.Core.Wal;

namespace Storage.Core.Tests.Wal;

public class WalRecordEndsTests
{
    private static readonly Lsn Start = new(0x0100_0000);

    [Fact]
    public void Lists_every_record_end_of_valid_wal_including_records_across_pages()
    {
        var builder = new WalBuilder(Start);
        var ends = new List<Lsn> { builder.AppendNoop(100).End, builder.AppendNoop(20_000).End, builder.AppendCommit(7, DateTimeOffset.UtcNow).End };
        Assert.Equal(ends, WalRecordEnds.Find(Start, builder.TakeBytes()));
    }

    [Fact]
    public void Refuses_damaged_wal_and_wal_that_ends_inside_a_record()
    {
        var builder = new WalBuilder(Start);
        builder.AppendNoop(5000);
        builder.AppendNoop(5000);
        var wal = builder.TakeBytes();

        var flipped = (byte[])wal.Clone();
        flipped[3000] ^= 0x01;
        Assert.Throws<WalDecodeException>(() => WalRecordEnds.Find(Start, flipped));
        Assert.Throws<WalDecodeException>(() => WalRecordEnds.Find(Start, wal.AsSpan(0, wal.Length - 10)));
        Assert.Throws<WalDecodeException>(() => WalRecordEnds.Find(Start, new byte[8192])); // zeros are not WAL
    }
}
