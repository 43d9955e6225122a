using Storage.Core.Wal;
using static Storage.Core.Tests.Wal.WalTestHelpers;

namespace Storage.Core.Tests.Wal;

/// <summary>
/// After a crash that lost the tail of a page-spanning record, PostgreSQL 15 writes new WAL over the
/// missing continuation and flags that page with XLP_FIRST_IS_OVERWRITE_CONTRECORD.
/// </summary>
public class OverwriteContrecordTests : IDisposable
{
    private readonly string _dir = TempDir();

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static (byte[] Bytes, Lsn Complete, Lsn Abandoned, Lsn Overwrite, Lsn After) Build()
    {
        var old = new WalBuilder(Segment1);
        var complete = old.AppendNoop(100);
        var abandoned = old.AppendNoop(20_000); // continues on pages 2 and 3, which get lost
        var page2 = Segment1 + (ulong)WalGeometry.PageSize;
        var prefix = old.TakeBytes()[..WalGeometry.PageSize];

        var recovered = new WalBuilder(page2, previousRecord: complete.Start);
        var overwrite = recovered.AppendOverwriteContrecord(abandoned.Start, DateTimeOffset.UtcNow);
        var after = recovered.AppendNoop(300);
        return ([.. prefix, .. recovered.TakeBytes()], complete.Start, abandoned.Start, overwrite.Start, after.Start);
    }

    [Fact]
    public void Decoder_skips_the_abandoned_record()
    {
        var (bytes, complete, abandoned, overwrite, after) = Build();
        foreach (var chunk in new[] { int.MaxValue, 1, 1000 })
        {
            var decoder = new WalDecoder(Segment1);
            var records = DecodeAll(Segment1, bytes, chunk, decoder);
            Assert.Equal([complete, overwrite, after], records.Select(r => r.Lsn));
            Assert.Equal(abandoned, decoder.LastOverwrittenRecordLsn);
            Assert.Equal(XlogInfo.OverwriteContrecord, records[1].RmgrInfo);
        }
    }

    [Fact]
    public async Task Pg_waldump_agrees()
    {
        var (bytes, _, _, _, _) = Build();
        WalSegmentFiles.Write(_dir, Segment1, bytes);
        var (lines, _) = await PgWalDump.RunAsync(_dir, "000000010000000000000001", "000000010000000000000001");
        var ours = WalSegmentFiles.Decode(Directory.GetFiles(_dir)).ToList();
        Assert.Equal(3, lines.Count);
        Assert.Equal(3, ours.Count);
        for (int i = 0; i < 3; i++) PgWalDump.AssertSame(lines[i], ours[i]);
        Assert.StartsWith("OVERWRITE_CONTRECORD", lines[1].Desc);
    }
}
