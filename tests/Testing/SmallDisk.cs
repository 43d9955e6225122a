using System.Diagnostics;

namespace Storage.Testing;

/// <summary>
/// A real, size-limited filesystem for full-disk tests: a tmpfs of a few MB mounted on a directory.
/// Mounting needs root, which CI has; elsewhere the test fails saying so rather than passing
/// without testing anything. Filler files take the space and give it back; dispose unmounts it
/// (whatever the test's outcome).
/// </summary>
public sealed class SmallDisk : IDisposable
{
    private readonly List<string> _fillers = new();

    private SmallDisk(string path) => Path = path;

    public string Path { get; }

    /// <summary>Bytes still free.</summary>
    public long FreeBytes => new DriveInfo(Path).AvailableFreeSpace;

    /// <summary>Mounts a tmpfs of <paramref name="megabytes"/> MB on <paramref name="directory"/> (default: a fresh temp directory).</summary>
    public static SmallDisk Mount(int megabytes, string? directory = null)
    {
        if (!Environment.IsPrivilegedProcess)
            throw new InvalidOperationException("this test fills a disk by mounting a size-limited tmpfs and must run as root (as in CI)");
        directory ??= Directory.CreateTempSubdirectory("small-disk-").FullName;
        Directory.CreateDirectory(directory);
        // mode 0755: PostgreSQL (as the postgres user) must reach what a test puts there.
        Run("mount", "-t", "tmpfs", "-o", $"size={megabytes}m,mode=0755", "tmpfs", directory);
        return new SmallDisk(directory);
    }

    /// <summary>Creates a file of <paramref name="bytes"/> bytes (really written, so it takes the space); returns its path.</summary>
    public string AddFiller(long bytes)
    {
        var path = NextFiller();
        var chunk = new byte[1 << 20];
        Array.Fill(chunk, (byte)0xAB);
        using var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write);
        for (long written = 0; written < bytes; written += chunk.Length)
            file.Write(chunk, 0, (int)Math.Min(chunk.Length, bytes - written));
        return path;
    }

    /// <summary>Takes every byte still free but <paramref name="leaveBytes"/> (a file written until then, or until the disk refuses); returns its path.</summary>
    public string FillUp(long leaveBytes = 0)
    {
        var path = NextFiller();
        var chunk = new byte[4096];
        using var handle = File.OpenHandle(path, FileMode.CreateNew, FileAccess.Write);
        long offset = 0;
        try
        {
            while (FreeBytes > leaveBytes) { RandomAccess.Write(handle, chunk, offset); offset += chunk.Length; }
        }
        catch (IOException) { } // full
        return path;
    }

    /// <summary>Gives the space of every filler back.</summary>
    public void Free()
    {
        foreach (var filler in _fillers) File.Delete(filler);
        _fillers.Clear();
    }

    public void Dispose()
    {
        // A process of the test may still hold files here: then detach it now, freed when they close.
        if (!TryRun("umount", [Path], out _)) TryRun("umount", ["-l", Path], out _);
        try { Directory.Delete(Path); } catch (IOException) { }
    }

    private string NextFiller()
    {
        var path = System.IO.Path.Combine(Path, $"filler-{_fillers.Count}");
        _fillers.Add(path);
        return path;
    }

    private static void Run(string command, params string[] args)
    {
        if (!TryRun(command, args, out var error)) throw new InvalidOperationException($"{command} {string.Join(' ', args)} failed: {error}");
    }

    private static bool TryRun(string command, string[] args, out string error)
    {
        var info = new ProcessStartInfo(command) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in args) info.ArgumentList.Add(a);
        using var process = Process.Start(info)!;
        error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        return process.ExitCode == 0;
    }
}
