using Storage.Core;
using Storage.Core.Wal;

namespace Storage.Compute.Tests;

public sealed class CompleteRecordCutterTests
{
    [Fact]
    public void Passes_only_whole_records_whatever_the_chunking()
    {
        var start = new Lsn(0x0100_0000);
        var builder = new WalBuilder(start);
        var ends = new List<Lsn>();
        for (int i = 0; i < 200; i++) { builder.AppendNoop(i * 37 % 3000 + 32); ends.Add(builder.EndLsn); }
        var wal = builder.TakeBytes();

        foreach (int chunk in new[] { 1, 7, 100, 8192, 65536 })
        {
            var cutter = new CompleteRecordCutter(start);
            var passed = new List<byte>();
            for (int offset = 0; offset < wal.Length; offset += chunk)
            {
                var piece = cutter.Feed(wal.AsSpan(offset, Math.Min(chunk, wal.Length - offset)));
                passed.AddRange(piece.ToArray());
                Assert.Contains(cutter.PassedUpTo, ends.Prepend(start)); // always a record boundary
                Assert.Equal(start + (ulong)passed.Count, cutter.PassedUpTo);
            }
            Assert.Equal(wal.Length, passed.Count);
            Assert.Equal(wal, passed.ToArray());
        }
    }

    [Fact]
    public void Holds_back_a_record_until_its_last_byte_arrives()
    {
        var start = new Lsn(0x0100_0000);
        var builder = new WalBuilder(start);
        builder.AppendNoop(100);
        var first = builder.EndLsn;
        builder.AppendNoop(5000);
        var wal = builder.TakeBytes();

        var cutter = new CompleteRecordCutter(start);
        int firstLength = (int)(first - start);
        Assert.Equal(firstLength, cutter.Feed(wal.AsSpan(0, firstLength + 10)).Length);
        Assert.True(cutter.Feed(wal.AsSpan(firstLength + 10, wal.Length - firstLength - 11)).IsEmpty);
        Assert.Equal(first, cutter.PassedUpTo);
        Assert.Equal(wal.Length - firstLength, cutter.Feed(wal.AsSpan(wal.Length - 1)).Length);
    }

    [Fact]
    public void Garbage_is_a_decode_error_not_wal()
    {
        var cutter = new CompleteRecordCutter(new Lsn(0x0100_0000));
        var garbage = Enumerable.Repeat((byte)0xAB, 9000).ToArray();
        Assert.Throws<WalDecodeException>(() => cutter.Feed(garbage));
    }
}
