using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Storage.StorageController;

/// <summary>Another storage controller process holds the state directory.</summary>
public sealed class StateDirectoryLockedException(string directory)
    : Exception($"another storage controller holds {directory} (its lock file {StateDirectoryLock.FileName} is locked); refusing to start");

/// <summary>
/// One storage controller per state directory: an exclusive flock on <c>DIR/controller.lock</c>,
/// held for the life of the process (the kernel drops it when the process ends, SIGKILL too). Two
/// controllers on one state would each hand out generations the other does not know of.
/// </summary>
public sealed partial class StateDirectoryLock : IDisposable
{
    public const string FileName = "controller.lock";

    [LibraryImport("libc", SetLastError = true)]
    private static partial int flock(int fd, int operation);

    private const int LockExclusive = 2, LockNonBlocking = 4;
    private const int EWouldBlock = 11;
    private const int SharingViolation = unchecked((int)0x80070020); // the HResult on Windows; on Linux it is the errno

    private readonly SafeFileHandle _handle;

    private StateDirectoryLock(SafeFileHandle handle) => _handle = handle;

    /// <summary>Takes the lock at once or throws <see cref="StateDirectoryLockedException"/>.</summary>
    public static StateDirectoryLock Acquire(string directory)
    {
        Directory.CreateDirectory(directory);
        SafeFileHandle handle;
        // .NET takes an exclusive flock itself for FileShare.None...
        try { handle = File.OpenHandle(Path.Combine(directory, FileName), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None); }
        catch (IOException e) when (e.HResult is EWouldBlock or SharingViolation) { throw new StateDirectoryLockedException(directory); }
        // ...unless file locking is turned off in its configuration: take it explicitly (a no-op if held).
        bool added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            if (flock((int)handle.DangerousGetHandle(), LockExclusive | LockNonBlocking) != 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                handle.Dispose();
                if (errno == EWouldBlock) throw new StateDirectoryLockedException(directory);
                throw new IOException($"cannot lock {Path.Combine(directory, FileName)}: {Marshal.GetPInvokeErrorMessage(errno)}");
            }
        }
        finally
        {
            if (added) handle.DangerousRelease();
        }
        return new StateDirectoryLock(handle);
    }

    public void Dispose() => _handle.Dispose();
}
