using Storage.Core;
using Storage.Core.Wal;

namespace Storage.Cli;

/// <summary>
/// Finds the WAL record that ends at a given LSN in the safekeepers' segment files, so new WAL
/// appended there chains to it (xl_prev) and the timeline's WAL stays one valid stream.
/// </summary>
public static class PreviousRecord
{
    /// <summary>The start of the record ending at <paramref name="end"/>; Lsn.Invalid when <paramref name="end"/> is the timeline start.</summary>
    public static Lsn Find(IEnumerable<string> timelineDirs, Lsn end, Lsn timelineStart)
    {
        if (end == timelineStart) return Lsn.Invalid;
        foreach (var dir in timelineDirs.Where(Directory.Exists))
        {
            var last = LastRecordBefore(SegmentFilesUpTo(dir, end), end);
            if (last is not null && WalFormat.MaxAlignUp(last.EndLsn) == end) return last.Lsn;
        }
        throw new CliError($"no WAL record ends at {end} in the safekeepers' segment files; cannot continue the timeline's WAL there");
    }

    private static IEnumerable<string> SegmentFilesUpTo(string dir, Lsn end)
    {
        var geometry = WalGeometry.Default;
        foreach (var path in Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories))
            if (geometry.TryParseSegmentFileName(Path.GetFileName(path), out _, out var segment) && segment <= geometry.SegmentNumber(end))
                yield return path;
    }

    private static WalRecord? LastRecordBefore(IEnumerable<string> files, Lsn end)
    {
        WalRecord? last = null;
        try
        {
            foreach (var record in WalSegmentFiles.Decode(files))
            {
                if (record.Lsn >= end) break;
                last = record;
            }
        }
        catch (WalDecodeException) { } // a torn tail: the records before it still count
        return last;
    }
}
