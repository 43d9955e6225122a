namespace Storage.Core.Wal;

/// <summary>Reading and writing WAL as PostgreSQL segment files (000000010000000000000001 ...).</summary>
public static class WalSegmentFiles
{
    /// <summary>
    /// Decodes the records of whole segment files (".partial" files allowed). Segment numbers come
    /// from the file names; files are processed in segment order and consecutive segments are read
    /// as one stream, so records spanning files are decoded. Decoding of a run stops at the end of
    /// WAL (zeroed tail); a gap in the numbering starts a new run. Invalid WAL throws
    /// <see cref="WalDecodeException"/> after the records before it were returned.
    /// </summary>
    public static IEnumerable<WalRecord> Decode(IEnumerable<string> paths, WalGeometry? geometry = null)
    {
        geometry ??= WalGeometry.Default;
        var files = new List<(ulong Segment, string Path)>();
        foreach (var path in paths)
        {
            if (!geometry.TryParseSegmentFileName(Path.GetFileName(path), out _, out var segment))
                throw new ArgumentException($"'{path}' is not named like a WAL segment file (24 hex digits, optionally .partial)", nameof(paths));
            files.Add((segment, path));
        }
        files.Sort((a, b) => a.Segment.CompareTo(b.Segment));

        WalDecoder? decoder = null;
        foreach (var (segment, path) in files)
        {
            // Continue the stream only if this file follows the bytes fed so far without a gap
            // (a short file, e.g. a truncated copy, also starts a new run).
            bool continues = decoder != null && !decoder.ReachedEndOfWal && decoder.FedUpTo == geometry.SegmentStart(segment);
            if (!continues)
                decoder = new WalDecoder(geometry.SegmentStart(segment), geometry);
            decoder!.Feed(File.ReadAllBytes(path));
            while (decoder.TryDecodeNext(out var record))
                yield return record;
        }
    }

    /// <summary>Decodes segment files and formats each record like pg_waldump.</summary>
    public static IEnumerable<string> Dump(IEnumerable<string> paths, WalGeometry? geometry = null) =>
        Decode(paths, geometry).Select(WalDumpFormatter.Format);

    /// <summary>
    /// Writes WAL bytes starting at <paramref name="start"/> into zero-filled segment files in
    /// <paramref name="directory"/> (creating them full-size if missing), as PostgreSQL lays them out.
    /// Returns the paths of the files written.
    /// </summary>
    public static IReadOnlyList<string> Write(string directory, Lsn start, ReadOnlySpan<byte> bytes, uint timeLineId = 1, WalGeometry? geometry = null)
    {
        geometry ??= WalGeometry.Default;
        Directory.CreateDirectory(directory);
        var written = new List<string>();
        var pos = start;
        while (!bytes.IsEmpty)
        {
            var segment = geometry.SegmentNumber(pos);
            int offset = geometry.SegmentOffset(pos);
            int n = Math.Min(bytes.Length, geometry.SegmentSize - offset);
            var path = Path.Combine(directory, geometry.SegmentFileName(timeLineId, segment));
            using (var file = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite))
            {
                if (file.Length < geometry.SegmentSize) file.SetLength(geometry.SegmentSize);
                file.Position = offset;
                file.Write(bytes[..n]);
            }
            written.Add(path);
            bytes = bytes[n..];
            pos += (ulong)n;
        }
        return written;
    }
}
