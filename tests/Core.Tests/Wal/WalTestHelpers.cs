using Storage.Core.Wal;

namespace Storage.Core.Tests.Wal;

internal static class WalTestHelpers
{
    public static readonly Lsn Segment1 = Lsn.Parse("0/1000000");
    public static readonly Lsn Segment2 = Lsn.Parse("0/2000000");

    /// <summary>Feeds <paramref name="bytes"/> (WAL from <paramref name="start"/>) in chunks and decodes everything.</summary>
    public static List<WalRecord> DecodeAll(Lsn start, byte[] bytes, int chunkSize = int.MaxValue, WalDecoder? decoder = null)
    {
        decoder ??= new WalDecoder(start);
        var records = new List<WalRecord>();
        for (int offset = 0; offset < bytes.Length; offset += chunkSize)
        {
            decoder.Feed(bytes.AsSpan(offset, Math.Min(chunkSize, bytes.Length - offset)));
            while (decoder.TryDecodeNext(out var r)) records.Add(r);
        }
        return records;
    }

    /// <summary>Builds noop records of the given total lengths starting at a segment start.</summary>
    public static (WalBuilder Builder, List<(Lsn Start, Lsn End)> Records) BuildNoops(Lsn start, params int[] lengths)
    {
        var builder = new WalBuilder(start);
        var records = lengths.Select(builder.AppendNoop).ToList();
        return (builder, records);
    }

    public static string TempDir()
    {
        return Directory.CreateTempSubdirectory("wal-test-").FullName;
    }
}
