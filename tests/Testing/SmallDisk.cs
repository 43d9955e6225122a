using System.Diagnostics;
using Storage.Core.Postgres;

namespace Storage.Testing;

/// <summary>
/// A real, size-limited filesystem for full-disk tests: a tmpfs of a few MB mounted on a fresh
/// temp directory (root only: the suite runs as root), filled on demand with a filler file and
/// emptied again, unmounted on dispose.
/// </summary>
public sealed class SmallDisk : IAsyncDisposable
{
    private SmallDisk(string path) => Path = path;

    public string Path { get; }
    private string FillerPath => System.IO.Path.Combine(Path, "filler");

    public static async Task<SmallDisk> MountAsync(int megabytes)
    {
        if (!OsUser.IsRoot) throw new InvalidOperationException("full-disk tests mount a tmpfs and need root (the suite runs as root)");
        var path = Directory.CreateTempSubdirectory("small-disk-").FullName;
        await RunAsync("mount", "-t", "tmpfs", "-o", $"size={megabytes}m,mode=0755", "tmpfs", path);
        return new SmallDisk(path);
    }

    /// <summary>Bytes still free.</summary>
    public long FreeBytes => new DriveInfo(Path).AvailableFreeSpace;

    /// <summary>Takes all free space but <paramref name="leaveBytes"/> with a filler file (written, so tmpfs really holds it).</summary>
    public void Fill(long leaveBytes = 0)
    {
        using var filler = new FileStream(FillerPath, FileMode.Append, FileAccess.Write);
        var chunk = new byte[1 << 20];
        Array.Fill(chunk, (byte)0x5A);
        try
        {
            while (FreeBytes > leaveBytes)
                filler.Write(chunk, 0, (int)Math.Min(chunk.Length, Math.Max(4096, FreeBytes - leaveBytes)));
            filler.Flush();
        }
        catch (IOException) { } // full: that is the point
    }

    /// <summary>Gives the space of the filler back.</summary>
    public void Free() => File.Delete(FillerPath);

    public async ValueTask DisposeAsync()
    {
        // Processes may still hold files there for a moment after being killed: retry the unmount.
        for (int attempt = 0; ; attempt++)
        {
            try { await RunAsync("umount", Path); break; }
            catch (InvalidOperationException) when (attempt < 50) { await Task.Delay(100); }
            catch (InvalidOperationException) { await RunAsync("umount", "-l", Path); break; }
        }
        try { Directory.Delete(Path); } catch (IOException) { }
    }

    private static async Task RunAsync(string program, params string[] arguments)
    {
        var psi = new ProcessStartInfo(program) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in arguments) psi.ArgumentList.Add(a);
        var result = await ProcessRunner.RunAsync(psi, TimeSpan.FromSeconds(30));
        if (!result.Succeeded) throw new InvalidOperationException($"{program} {string.Join(' ', arguments)} failed: {result.StandardError.Trim()}");
    }
}
