using Storage.Core;

namespace Storage.Core.Tests;

public class LsnTests
{
    [Theory]
    [InlineData("0/16B3748", 0x16B3748UL)]
    [InlineData("1/0", 0x1_0000_0000UL)]
    [InlineData("FFFFFFFF/FFFFFFFF", ulong.MaxValue)]
    [InlineData("0/0", 0UL)]
    public void Parses_and_prints_like_postgres(string text, ulong value)
    {
        var lsn = Lsn.Parse(text);
        Assert.Equal(value, lsn.Value);
        Assert.Equal(text, lsn.ToString());
    }

    [Theory]
    [InlineData("")]
    [InlineData("16B3748")]
    [InlineData("0/")]
    [InlineData("/1")]
    [InlineData("0/XYZ")]
    [InlineData("123456789/0")]
    public void Rejects_malformed_text(string text)
    {
        Assert.False(Lsn.TryParse(text, out _));
        Assert.Throws<FormatException>(() => Lsn.Parse(text));
    }

    [Fact]
    public void Segment_names_match_postgres()
    {
        var g = WalGeometry.Default;
        Assert.Equal("000000010000000000000001", g.SegmentFileName(1, g.SegmentNumber(Lsn.Parse("0/16B3748"))));
        Assert.Equal("0000000100000001000000FF", g.SegmentFileName(1, g.SegmentNumber(Lsn.Parse("1/FF000000"))));
        Assert.True(g.TryParseSegmentFileName("0000000100000001000000FF.partial", out var tli, out var seg));
        Assert.Equal(1u, tli);
        Assert.Equal(Lsn.Parse("1/FF000000"), g.SegmentStart(seg));
        Assert.False(g.TryParseSegmentFileName("000000010000000100000100", out _, out _));
    }

    [Fact]
    public void Crc32c_matches_the_standard_check_value()
    {
        Assert.Equal(0xE3069283u, Crc32C.Compute("123456789"u8));
        uint running = Crc32C.Append(Crc32C.Initial, "1234"u8);
        running = Crc32C.Append(running, "56789"u8);
        Assert.Equal(0xE3069283u, Crc32C.Finish(running));
    }
}
