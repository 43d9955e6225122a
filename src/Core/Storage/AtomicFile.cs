namespace Storage.Core.Storage;

/// <summary>
/// Writes a file so that a crash leaves either no file or the whole new one (ARCHITECTURE.md
/// invariant 8): into a temp file beside it, fdatasync, rename over, fsync the directory.
/// </summary>
public static class AtomicFile
{
    /// <param name="write">Writes the content; it may also check or size the file before it is synced.</param>
    public static async Task WriteAsync(string path, Func<FileStream, Task> write, CancellationToken ct, int bufferSize = 4096)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        Directory.CreateDirectory(directory);
        var temp = path + ".tmp";
        try
        {
            await using (var file = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, bufferSize))
            {
                await write(file);
                await file.FlushAsync(ct);
                FileSync.DataSync(file.SafeFileHandle);
            }
        }
        catch
        {
            DeleteQuietly(temp); // a half-written temp file only takes space (a full disk's, maybe)
            throw;
        }
        MoveIntoPlace(temp, path, directory);
    }

    /// <summary>The same for bytes at hand, into an existing directory (small state files).</summary>
    public static void Write(string path, ReadOnlySpan<byte> bytes)
    {
        var temp = path + ".tmp";
        try
        {
            using var handle = File.OpenHandle(temp, FileMode.Create, FileAccess.Write);
            RandomAccess.Write(handle, bytes, 0);
            FileSync.DataSync(handle);
        }
        catch
        {
            DeleteQuietly(temp);
            throw;
        }
        MoveIntoPlace(temp, path, Path.GetDirectoryName(Path.GetFullPath(path))!);
    }

    private static void DeleteQuietly(string path)
    {
        try { File.Delete(path); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    private static void MoveIntoPlace(string temp, string path, string directory)
    {
        File.Move(temp, path, overwrite: true);
        FileSync.SyncDirectory(directory);
    }
}
