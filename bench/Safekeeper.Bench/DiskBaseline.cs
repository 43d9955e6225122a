using System.Diagnostics;
using Microsoft.Win32.SafeHandles;
using Storage.Core.Storage;

namespace Storage.Safekeeper.Bench;

/// <summary>
/// What the disk alone can do, measured the way a WAL is written: sequential writes into a
/// preallocated 16 MiB file, each followed by fdatasync. Preallocating (and syncing the zeros)
/// first means no write grows the file, so fdatasync does not also have to flush metadata,
/// which is the same trick the safekeeper's WalStore uses.
/// </summary>
public sealed class DiskBaseline(string directory)
{
    public const int FileSize = 16 * 1024 * 1024;
    public const int BlockSize = 8 * 1024;
    public const int StreamBlockSize = 1024 * 1024;

    /// <summary>Write 8 KiB + fdatasync, one at a time: the latency of a single durable WAL write.</summary>
    public LatencyStats SingleWriteLatency(int warmup, int iterations)
    {
        using var file = Preallocate();
        var block = Pattern(BlockSize);
        long offset = 0;
        var samples = new List<double>(iterations);
        for (int i = 0; i < warmup + iterations; i++)
        {
            var started = Stopwatch.GetTimestamp();
            WriteAndSync(file, block, ref offset);
            if (i >= warmup) samples.Add(Stopwatch.GetElapsedTime(started).TotalMicroseconds);
        }
        return LatencyStats.From(samples);
    }

    /// <summary>Sequential writes of <paramref name="blockSize"/> bytes, each followed by fdatasync.</summary>
    public ThroughputStats SyncedWriteThroughput(int blockSize, long totalBytes)
    {
        using var file = Preallocate();
        var block = Pattern(blockSize);
        long offset = 0;
        long written = 0;
        var started = Stopwatch.GetTimestamp();
        while (written < totalBytes)
        {
            WriteAndSync(file, block, ref offset);
            written += blockSize;
        }
        return new ThroughputStats(written, Stopwatch.GetElapsedTime(started).TotalSeconds);
    }

    private static void WriteAndSync(SafeFileHandle file, byte[] block, ref long offset)
    {
        // Wrap around at the end of the file, like a WAL moving on to a (preallocated) next segment.
        if (offset + block.Length > FileSize) offset = 0;
        RandomAccess.Write(file, block, offset);
        FileSync.DataSync(file);
        offset += block.Length;
    }

    private SafeFileHandle Preallocate()
    {
        var path = Path.Combine(directory, $"baseline-{Guid.NewGuid():N}.wal");
        var file = File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, FileOptions.DeleteOnClose);
        var zeros = new byte[StreamBlockSize];
        for (long at = 0; at < FileSize; at += zeros.Length) RandomAccess.Write(file, zeros, at);
        FileSync.DataSync(file);
        return file;
    }

    private static byte[] Pattern(int size)
    {
        // Non-zero, non-repeating-per-block data so nothing can short-cut zero pages.
        var bytes = new byte[size];
        Random.Shared.NextBytes(bytes);
        return bytes;
    }
}
