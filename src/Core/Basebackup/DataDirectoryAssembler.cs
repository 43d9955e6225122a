using System.Formats.Tar;
using Storage.Core.Postgres;

namespace Storage.Core.Basebackup;

/// <summary>
/// Turns an image and the WAL after it into a data directory that PostgreSQL starts from at an
/// exact LSN: the image is unpacked, WAL [image end, target) is written into pg_wal, the rest is
/// cut, and pg_control is marked as crashed so the first start replays up to the target.
/// </summary>
public static class DataDirectoryAssembler
{
    public static async Task ExtractImageAsync(Stream tar, string targetDirectory, CancellationToken ct)
    {
        Directory.CreateDirectory(targetDirectory);
        if (Directory.EnumerateFileSystemEntries(targetDirectory).Any())
            throw new InvalidOperationException($"{targetDirectory} is not empty");
        await TarFile.ExtractToDirectoryAsync(tar, targetDirectory, overwriteFiles: false, ct);
    }

    /// <param name="copyWal">Writes WAL [imageEnd, target) into the stream it is given.</param>
    public static async Task AppendWalAndMarkForReplayAsync(string dataDirectory, Lsn imageEnd, Lsn target,
        Func<Stream, CancellationToken, Task> copyWal, CancellationToken ct)
    {
        if (target < imageEnd) throw new ArgumentException($"target {target} is below the image's end {imageEnd}");
        var control = PgControlFile.ReadFromDataDirectory(dataDirectory);
        using (var wal = new PgWalDirectoryWriter(dataDirectory, imageEnd))
        {
            if (target > imageEnd) await copyWal(wal, ct);
            if (wal.Next != target)
                throw new InvalidOperationException($"WAL copy ended at {wal.Next}, expected {target}");
            wal.CutHere();
        }
        control.SetState(DatabaseState.InProduction);
        control.Save();
        // PostgreSQL refuses a data directory others can read.
        if (!OperatingSystem.IsWindows())
            File.SetUnixFileMode(dataDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        await OsUser.GiveToPostgresAsync(dataDirectory, ct);
    }
}
