using Storage.Core.Wal;
using static Storage.Core.Tests.Wal.WalTestHelpers;

namespace Storage.Core.Tests.Wal;

public class WalBlockRecordTests : IDisposable
{
    private static readonly RelFileNode RelA = new(1663, 5, 16384);
    private static readonly RelFileNode RelB = new(1663, 5, 16390);
    private readonly string _dir = TempDir();

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static byte[] Page(byte seed)
    {
        var page = new byte[WalGeometry.PageSize];
        for (int i = 0; i < page.Length; i++) page[i] = (byte)(i * 7 + seed);
        return page;
    }

    private static List<WalBlockSpec> Blocks(byte[] pageA, byte[] pageB) =>
    [
        new(RelA, ForkNumber.Main, 0) { PageImage = pageA, HoleOffset = 100, HoleLength = 4000 },
        new(RelA, ForkNumber.Fsm, 2) { Data = new byte[] { 1, 2, 3 } },
        new(RelB, ForkNumber.VisibilityMap, 5) { PageImage = pageB, Data = new byte[300], WillInit = true },
    ];

    [Fact]
    public void Block_references_round_trip()
    {
        var pageA = Page(1);
        var pageB = Page(2);
        var builder = new WalBuilder(Segment1);
        builder.AppendNoop(7000); // so the record crosses a page boundary
        builder.AppendRecord((byte)ResourceManagerId.Xlog, XlogInfo.Fpi, 42, Blocks(pageA, pageB), new byte[] { 9, 9 });
        var record = DecodeAll(Segment1, builder.TakeBytes())[1];

        Assert.True(record.SpansPages(WalGeometry.Default));
        Assert.Equal(3, record.BlockReferences.Count);
        var a = record.BlockReferences[0];
        Assert.Equal((RelA, ForkNumber.Main, 0u), (a.Rel, a.Fork, a.BlockNumber));
        Assert.NotNull(a.Image);
        Assert.True(a.Image.HasHole);
        Assert.Equal(100, a.Image.HoleOffset);
        Assert.Equal(4000, a.Image.HoleLength);
        var restored = a.Image.RestorePage();
        Assert.Equal(pageA[..100], restored[..100]);
        Assert.Equal(pageA[4100..], restored[4100..]);
        Assert.All(restored[100..4100], b => Assert.Equal(0, b));

        var fsm = record.BlockReferences[1];
        Assert.Equal((RelA, ForkNumber.Fsm, 2u, false), (fsm.Rel, fsm.Fork, fsm.BlockNumber, fsm.HasImage));
        Assert.Equal(new byte[] { 1, 2, 3 }, fsm.Data.ToArray());

        var vm = record.BlockReferences[2];
        Assert.Equal((RelB, ForkNumber.VisibilityMap, 5u), (vm.Rel, vm.Fork, vm.BlockNumber));
        Assert.True(vm.WillInit);
        Assert.Equal(pageB, vm.Image!.RestorePage());
        Assert.Equal(300, vm.DataLength);
        Assert.Equal(new byte[] { 9, 9 }, record.MainData.ToArray());
        Assert.Equal(record.TotalLength - (uint)(4192 + 8192), record.RecordLength);
    }

    [Fact]
    public async Task Pg_waldump_reads_block_references_written_by_the_builder()
    {
        var builder = new WalBuilder(Segment1);
        builder.AppendNoop(7000);
        builder.AppendRecord((byte)ResourceManagerId.Xlog, XlogInfo.Fpi, 42, Blocks(Page(1), Page(2)), []);
        builder.AppendRecord((byte)ResourceManagerId.Xlog, XlogInfo.FpiForHint, 43, [new(RelB, ForkNumber.Init, 1) { PageImage = Page(3) }], []);
        WalSegmentFiles.Write(_dir, Segment1, builder.TakeBytes());

        var (lines, _) = await PgWalDump.RunAsync(_dir, "000000010000000000000001", "000000010000000000000001");
        var ours = WalSegmentFiles.Decode(Directory.GetFiles(_dir)).ToList();
        Assert.Equal(3, lines.Count);
        Assert.Equal(3, ours.Count);
        for (int i = 0; i < lines.Count; i++) PgWalDump.AssertSame(lines[i], ours[i]);
        Assert.Contains("blkref #1: rel 1663/5/16384 fork fsm blk 2", lines[1].Prefix + ", desc: " + lines[1].Desc);
        Assert.Equal("init", lines[2].Blocks.Single().Fork);
    }
}
