using System.Globalization;
using System.Text.RegularExpressions;
using Storage.Core.Postgres;
using Storage.Core.Wal;

namespace Storage.Core.Tests.Wal;

/// <summary>One blkref as pg_waldump prints it.</summary>
internal sealed record DumpBlockRef(int Id, string Rel, string Fork, uint Block, bool Fpw);

/// <summary>One line of pg_waldump output.</summary>
internal sealed record DumpLine(string Rmgr, uint RecLen, uint TotLen, uint Xid, Lsn Lsn, Lsn Prev, string Desc, IReadOnlyList<DumpBlockRef> Blocks, string Prefix);

/// <summary>Runs PostgreSQL's pg_waldump and parses its default (one line per record) output.</summary>
internal static partial class PgWalDump
{
    [GeneratedRegex(@"^rmgr: (?<rmgr>\S+)\s+len \(rec/tot\):\s*(?<rec>\d+)/\s*(?<tot>\d+), tx:\s*(?<tx>\d+), lsn: (?<lsn>[0-9A-F]+/[0-9A-F]+), prev (?<prev>[0-9A-F]+/[0-9A-F]+), desc: (?<desc>.*)$")]
    private static partial Regex LineRegex();

    [GeneratedRegex(@"blkref #(?<id>\d+): rel (?<rel>\d+/\d+/\d+)(?: fork (?<fork>\w+))? blk (?<blk>\d+)(?<fpw> FPW)?")]
    private static partial Regex BlockRegex();

    public static async Task<(List<DumpLine> Lines, string Stderr)> RunAsync(string walDir, string firstSegment, string lastSegment)
    {
        var bin = PostgresBinaries.Locate();
        var result = await ProcessRunner.RunAsync(bin.PgWalDump, ["-p", walDir, firstSegment, lastSegment], TimeSpan.FromMinutes(2));
        // pg_waldump exits non-zero at the usual "invalid record length ... got 0" end of WAL.
        if (!result.Succeeded && !result.StandardError.Contains("wanted 24, got 0", StringComparison.Ordinal))
            throw new InvalidOperationException($"pg_waldump failed: {result.StandardError}");
        var lines = result.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(Parse).ToList();
        return (lines, result.StandardError);
    }

    public static DumpLine Parse(string line)
    {
        var m = LineRegex().Match(line);
        if (!m.Success) throw new FormatException($"unexpected pg_waldump line: {line}");
        var blocks = BlockRegex().Matches(line).Select(b => new DumpBlockRef(
            int.Parse(b.Groups["id"].Value, CultureInfo.InvariantCulture),
            b.Groups["rel"].Value,
            b.Groups["fork"].Success ? b.Groups["fork"].Value : "main",
            uint.Parse(b.Groups["blk"].Value, CultureInfo.InvariantCulture),
            b.Groups["fpw"].Success)).ToList();
        return new DumpLine(
            m.Groups["rmgr"].Value,
            uint.Parse(m.Groups["rec"].Value, CultureInfo.InvariantCulture),
            uint.Parse(m.Groups["tot"].Value, CultureInfo.InvariantCulture),
            uint.Parse(m.Groups["tx"].Value, CultureInfo.InvariantCulture),
            Lsn.Parse(m.Groups["lsn"].Value),
            Lsn.Parse(m.Groups["prev"].Value),
            m.Groups["desc"].Value,
            blocks,
            line[..(line.IndexOf(", desc: ", StringComparison.Ordinal))]);
    }

    /// <summary>Asserts that our decoding of a record matches pg_waldump's line for it.</summary>
    public static void AssertSame(DumpLine expected, WalRecord actual)
    {
        var context = $"record at {expected.Lsn}";
        Assert.True(expected.Lsn == actual.Lsn, $"{context}: we decoded {actual.Lsn}");
        Assert.True(expected.Rmgr == actual.RmgrName, $"{context}: rmgr {expected.Rmgr} vs {actual.RmgrName}");
        Assert.True(expected.TotLen == actual.TotalLength, $"{context}: tot {expected.TotLen} vs {actual.TotalLength}");
        Assert.True(expected.RecLen == actual.RecordLength, $"{context}: rec {expected.RecLen} vs {actual.RecordLength}");
        Assert.True(expected.Xid == actual.Xid, $"{context}: tx {expected.Xid} vs {actual.Xid}");
        Assert.True(expected.Prev == actual.Prev, $"{context}: prev {expected.Prev} vs {actual.Prev}");
        var ours = actual.BlockReferences.Select(b => new DumpBlockRef(b.BlockId, b.Rel.ToString(), ForkNames.Name(b.Fork), b.BlockNumber, b.HasImage)).ToList();
        Assert.Equal(expected.Blocks, ours);
        // Our formatter prints the part before desc exactly like pg_waldump.
        var formatted = WalDumpFormatter.Format(actual);
        Assert.Equal(expected.Prefix, formatted[..formatted.IndexOf(", desc: ", StringComparison.Ordinal)]);
    }
}
