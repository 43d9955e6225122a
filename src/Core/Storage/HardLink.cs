using System.Runtime.InteropServices;

namespace Storage.Core.Storage;

/// <summary>Hard links (link(2)): a second name for the same file, sharing its bytes as they change.</summary>
public static partial class HardLink
{
    /// <summary>Creates <paramref name="newPath"/> as a link to <paramref name="existing"/>; false if the OS refuses (e.g. another file system).</summary>
    public static bool TryCreate(string existing, string newPath) => !OperatingSystem.IsWindows() && link(existing, newPath) == 0;

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int link(string existing, string newPath);
}
