using Storage.Core.Storage;

namespace Storage.Safekeeper.Storage;

/// <summary>
/// The fsyncs that make WAL found after a restart durable (see <see cref="WalRecovery.Recover"/>);
/// a seam so tests can see which files were synced.
/// </summary>
internal class DiskSync
{
    public static readonly DiskSync Default = new();

    /// <summary>fdatasync of a file's data, whichever process wrote it (the page cache is per file).</summary>
    public virtual void File(string path)
    {
        using var handle = System.IO.File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        FileSync.DataSync(handle);
    }

    public virtual void Directory(string path) => FileSync.SyncDirectory(path);
}
