using Storage.Core.Postgres;

namespace Storage.Core.Basebackup;

/// <summary>Final touches on an unpacked basebackup before PostgreSQL may start on it.</summary>
public static class DataDirectoryAssembler
{
    /// <summary>
    /// Extends pg_wal segment files shorter than a segment with zeros (a basebackup sends the last
    /// one only up to its LSN; PostgreSQL reads only whole segments, and zeros end its WAL).
    /// </summary>
    public static void PadWalSegments(string dataDirectory, WalGeometry? geometry = null)
    {
        geometry ??= WalGeometry.Default;
        var pgWal = Path.Combine(dataDirectory, "pg_wal");
        if (!Directory.Exists(pgWal)) return;
        foreach (var file in Directory.EnumerateFiles(pgWal))
        {
            if (!geometry.TryParseSegmentFileName(Path.GetFileName(file), out _, out _)) continue;
            using var handle = File.OpenHandle(file, FileMode.Open, FileAccess.ReadWrite);
            var length = RandomAccess.GetLength(handle);
            if (length > geometry.SegmentSize) throw new Storage.CorruptFileException(file, $"a WAL segment of {length} bytes is larger than a segment");
            if (length < geometry.SegmentSize) RandomAccess.SetLength(handle, geometry.SegmentSize);
        }
    }

    /// <summary>Gives an unpacked data directory to the postgres user with the mode PostgreSQL insists on.</summary>
    public static async Task HandToPostgresAsync(string dataDirectory, CancellationToken ct)
    {
        // PostgreSQL refuses a data directory others can read.
        if (!OperatingSystem.IsWindows())
            File.SetUnixFileMode(dataDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        await OsUser.GiveToPostgresAsync(dataDirectory, ct);
    }
}
