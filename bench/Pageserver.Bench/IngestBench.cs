using System.Diagnostics;
using Storage.Core;
using Storage.Core.Wal;
using Storage.Pageserver.Wal;

namespace Storage.Pageserver.Bench;

/// <summary>Throughput of one way of handling the same WAL: median of the repeats, with their range.</summary>
public sealed record Throughput(long Bytes, IReadOnlyList<double> Seconds)
{
    public double MedianSeconds => Seconds.Order().ElementAt(Seconds.Count / 2);
    public double MBps => Bytes / (1024.0 * 1024.0) / MedianSeconds;
    public double MinMBps => Bytes / (1024.0 * 1024.0) / Seconds.Max();
    public double MaxMBps => Bytes / (1024.0 * 1024.0) / Seconds.Min();
}

public sealed record IngestResults(string Workload, long WalBytes, long Records, Throughput Raw, Throughput Decode, Throughput Write, Throughput Ingest);

/// <summary>
/// WAL ingest against reading the same WAL: (a) the segment files read into memory; (b) decode
/// only (WalDecoder + SegmentIndex.Add); (c) write only: the bytes into a WalSegmentStore, no
/// decoding, which is the disk's share of ingest; (d) WalIngestor.Ingest into a WalSegmentStore in a temp
/// dir, which writes the segment layers (fdatasync'd when a segment is left, as the store does)
/// and saves each finished segment's index, as the pageserver's timeline does. WAL is fed in
/// 128 KiB chunks, the size a safekeeper's ReadWal sends.
/// </summary>
public static class IngestBench
{
    private const int Chunk = 128 * 1024;

    public static IngestResults Run(RealWal wal, string scratch, int repeats)
    {
        var bytes = new byte[wal.Length];
        var raw = Measure(repeats, () => wal.ReadInto(bytes));
        long records = 0;
        var decode = Measure(repeats, () => records = DecodeOnly(bytes, wal.Start));
        var write = Measure(repeats, () => InTempDirectory(scratch, directory => WriteOnly(bytes, wal.Start, directory)));
        var ingest = Measure(repeats, () => InTempDirectory(scratch, directory => Ingest(bytes, wal.Start, directory)));
        return new IngestResults(wal.Workload, wal.Length, records, new Throughput(wal.Length, raw), new Throughput(wal.Length, decode),
            new Throughput(wal.Length, write), new Throughput(wal.Length, ingest));
    }

    private static List<double> Measure(int repeats, Action action)
    {
        action(); // warm-up: JIT, page cache
        var seconds = new List<double>();
        for (int i = 0; i < repeats; i++)
        {
            var started = Stopwatch.GetTimestamp();
            action();
            seconds.Add(Stopwatch.GetElapsedTime(started).TotalSeconds);
        }
        return seconds;
    }

    private static void InTempDirectory(string parent, Action<string> action)
    {
        var directory = Path.Combine(parent, "ingest-" + Guid.NewGuid().ToString("N")[..8]);
        try { action(directory); }
        finally { Directory.Delete(directory, recursive: true); }
    }

    /// <summary>The disk's part of ingest: the same bytes into segment layers, no decoding, no index.</summary>
    private static void WriteOnly(byte[] bytes, Lsn start, string directory)
    {
        using var store = new WalSegmentStore(directory, WalGeometry.Default);
        for (int at = 0; at < bytes.Length; at += Chunk) store.Write(start + (ulong)at, bytes.AsSpan(at, Math.Min(Chunk, bytes.Length - at)));
    }

    private static long DecodeOnly(byte[] bytes, Lsn start)
    {
        var geometry = WalGeometry.Default;
        var decoder = new WalDecoder(start, geometry);
        var index = new SegmentIndex { Segment = geometry.SegmentNumber(start) };
        long records = 0;
        for (int at = 0; at < bytes.Length; at += Chunk)
        {
            decoder.Feed(bytes.AsSpan(at, Math.Min(Chunk, bytes.Length - at)));
            while (decoder.TryDecodeNext(out var record))
            {
                var segment = geometry.SegmentNumber(record.Lsn);
                if (segment != index.Segment) index = new SegmentIndex { Segment = segment };
                index.Add(record);
                records++;
            }
        }
        if (decoder.ReachedEndOfWal) throw new InvalidOperationException($"the WAL ends early, at {decoder.NextLsn}");
        return records;
    }

    private static void Ingest(byte[] bytes, Lsn start, string directory)
    {
        using var store = new WalSegmentStore(directory, WalGeometry.Default);
        var ingestor = new WalIngestor(store, start, start, default);
        for (int at = 0; at < bytes.Length; at += Chunk)
        {
            foreach (var finished in ingestor.Ingest(start + (ulong)at, bytes.AsSpan(at, Math.Min(Chunk, bytes.Length - at))))
                finished.Index.Save(Path.Combine(directory, SegmentIndex.FileName(store.FileName(finished.Index.Segment))));
        }
    }
}
