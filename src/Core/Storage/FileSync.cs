using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Storage.Core.Storage;

/// <summary>fdatasync/fsync for files and directories (what makes a write survive a crash).</summary>
public static partial class FileSync
{
    [LibraryImport("libc", SetLastError = true)]
    private static partial int fdatasync(int fd);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fsync(int fd);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int close(int fd);

    private const int O_RDONLY = 0, O_DIRECTORY = 0x10000;

    /// <summary>Flushes a file's data (and the metadata needed to read it back) to the disk.</summary>
    public static void DataSync(SafeFileHandle handle)
    {
        bool added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            if (fdatasync((int)handle.DangerousGetHandle()) != 0)
                throw new IOException($"fdatasync failed: {Marshal.GetLastPInvokeErrorMessage()}");
        }
        finally
        {
            if (added) handle.DangerousRelease();
        }
    }

    /// <summary>Makes a directory's entries (created, renamed, deleted files) durable.</summary>
    public static void SyncDirectory(string directory)
    {
        int fd = open(directory, O_RDONLY | O_DIRECTORY);
        if (fd < 0) throw new IOException($"cannot open directory {directory} to fsync it: {Marshal.GetLastPInvokeErrorMessage()}");
        try
        {
            if (fsync(fd) != 0) throw new IOException($"fsync of directory {directory} failed: {Marshal.GetLastPInvokeErrorMessage()}");
        }
        finally
        {
            close(fd);
        }
    }
}
