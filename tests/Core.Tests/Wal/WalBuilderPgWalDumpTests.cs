using Storage.Core.Wal;
using static Storage.Core.Tests.Wal.WalTestHelpers;

namespace Storage.Core.Tests.Wal;

/// <summary>PostgreSQL's own pg_waldump must accept the WAL our builder writes.</summary>
public class WalBuilderPgWalDumpTests : IDisposable
{
    private readonly string _dir = TempDir();

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task Pg_waldump_reads_builder_wal_across_pages_and_segments()
    {
        var commitTime = DateTimeOffset.UtcNow;
        var builder = new WalBuilder(Segment1);
        var built = new List<(Lsn Start, Lsn End)>
        {
            builder.AppendNoop(100),
            builder.AppendNoop(20_000),                 // spans pages
            builder.AppendCommit(735, commitTime),
            builder.AppendNoop(WalGeometry.PageSize),   // an odd alignment against pages
            builder.AppendSwitch(),                     // rest of segment 1 is padding
            builder.AppendNoop(300),
        };
        while (builder.EndLsn < Segment2 + (ulong)(WalGeometry.DefaultSegmentSize - 30_000)) built.Add(builder.AppendNoop(1_000_000));
        built.Add(builder.AppendNoop(100_000));        // spans into segment 3
        built.Add(builder.AppendCommit(736, commitTime));
        var files = WalSegmentFiles.Write(_dir, Segment1, builder.TakeBytes());
        Assert.Equal(3, files.Distinct().Count());

        var (lines, _) = await PgWalDump.RunAsync(_dir, "000000010000000000000001", "000000010000000000000003");
        var ours = WalSegmentFiles.Decode(Directory.GetFiles(_dir)).ToList();

        Assert.Equal(built.Count, lines.Count);
        Assert.Equal(built.Select(b => b.Start), lines.Select(l => l.Lsn));
        Assert.Equal(lines.Count, ours.Count);
        for (int i = 0; i < lines.Count; i++) PgWalDump.AssertSame(lines[i], ours[i]);
        Assert.StartsWith("COMMIT ", lines[2].Desc);
        Assert.Equal("SWITCH ", lines[4].Desc);
        Assert.Contains(ours, r => r.Lsn < Segment2 + (ulong)WalGeometry.DefaultSegmentSize && r.EndLsn > Segment2 + (ulong)WalGeometry.DefaultSegmentSize);
    }
}
