using System.Globalization;
using Storage.Core;
using Storage.Core.Postgres;

namespace Storage.Pageserver.Bench;

/// <summary>
/// Real PostgreSQL 15 WAL: a scratch server runs <c>pgbench -i -s SCALE</c> and a short pgbench
/// run, and its pg_wal segments are copied into <see cref="Directory"/> while it still runs (a
/// shutdown checkpoint could recycle them). Checkpoints are kept out of the way (max_wal_size
/// 8 GB, checkpoint_timeout 1 h) so every segment from initdb's on is still there.
/// </summary>
public sealed record RealWal(string Directory, IReadOnlyList<string> Files, Lsn Start, Lsn End, string Workload)
{
    public long Length => End - Start;

    public static async Task<RealWal> GenerateAsync(string directory, int scale, int seconds)
    {
        await using var pg = await ScratchPostgres.StartAsync(new ScratchPostgresOptions
        {
            Settings = new Dictionary<string, string> { ["max_wal_size"] = "'8GB'", ["checkpoint_timeout"] = "'1h'" },
        });
        var common = new[] { "-h", pg.Host, "-p", pg.Port.ToString(CultureInfo.InvariantCulture), "-U", "postgres" };
        (await ProcessRunner.RunAsync(pg.Binaries.PgBench, ["-i", "-q", "-s", scale.ToString(CultureInfo.InvariantCulture), .. common, "postgres"],
            TimeSpan.FromMinutes(10))).ThrowIfFailed("pgbench -i");
        (await ProcessRunner.RunAsync(pg.Binaries.PgBench, ["-c", "4", "-j", "2", "-T", seconds.ToString(CultureInfo.InvariantCulture), .. common, "postgres"],
            TimeSpan.FromMinutes(10))).ThrowIfFailed("pgbench");

        // Everything inserted must be written out (fsync is off, but write() is what the files show).
        Lsn end;
        while (true)
        {
            var row = (await pg.RunSqlAsync("select pg_current_wal_insert_lsn(), pg_current_wal_flush_lsn()")).Trim().Split('|');
            if (row[0] == row[1]) { end = Lsn.Parse(row[1]); break; }
            await Task.Delay(100);
        }

        var geometry = WalGeometry.Default;
        var segments = System.IO.Directory.EnumerateFiles(pg.PgWalDirectory)
            .Select(path => (Path: path, Ok: geometry.TryParseSegmentFileName(Path.GetFileName(path), out _, out var n), Number: n))
            .Where(s => s.Ok && s.Number <= geometry.SegmentNumber(new Lsn(end.Value - 1))).OrderBy(s => s.Number).ToList();
        for (int i = 1; i < segments.Count; i++)
            if (segments[i].Number != segments[i - 1].Number + 1) throw new InvalidOperationException($"pg_wal lacks segment {segments[i - 1].Number + 1}");
        System.IO.Directory.CreateDirectory(directory);
        var files = new List<string>();
        foreach (var segment in segments)
        {
            var copy = Path.Combine(directory, Path.GetFileName(segment.Path));
            File.Copy(segment.Path, copy);
            files.Add(copy);
        }
        return new RealWal(directory, files, geometry.SegmentStart(segments[0].Number), end,
            $"pgbench -i -s {scale} + pgbench -c 4 -T {seconds} on a scratch PostgreSQL 15");
    }

    /// <summary>Reads WAL [Start, End) from the segment files into <paramref name="destination"/> (one read per segment).</summary>
    public void ReadInto(byte[] destination)
    {
        int at = 0;
        foreach (var file in Files)
        {
            using var handle = File.OpenHandle(file, FileMode.Open, FileAccess.Read);
            int n = (int)Math.Min(WalGeometry.Default.SegmentSize, Length - at);
            int read = 0;
            while (read < n) read += RandomAccess.Read(handle, destination.AsSpan(at + read, n - read), read);
            at += n;
        }
    }
}
