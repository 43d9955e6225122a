using System.Diagnostics;

namespace Storage.Safekeeper.Tests.Storage;

/// <summary>
/// A size-limited tmpfs mounted on a directory, to run a safekeeper out of disk space for real.
/// Mounting needs root, which CI has; elsewhere the test fails saying so rather than passing
/// without testing anything. Dispose unmounts it (whatever the test's outcome).
/// </summary>
internal sealed class SmallDisk : IDisposable
{
    private readonly List<string> _fillers = new();

    private SmallDisk(string path) => Path = path;

    public string Path { get; }

    public static SmallDisk Mount(string directory, int megabytes)
    {
        if (!Environment.IsPrivilegedProcess)
            Assert.Fail("this test fills a disk by mounting a size-limited tmpfs and must run as root (as in CI): run it with sudo");
        Directory.CreateDirectory(directory);
        Run("mount", "-t", "tmpfs", "-o", $"size={megabytes}m", "tmpfs", directory);
        return new SmallDisk(directory);
    }

    /// <summary>Creates a file of <paramref name="bytes"/> bytes (really written, so it takes the space).</summary>
    public string AddFiller(long bytes)
    {
        var path = System.IO.Path.Combine(Path, $"filler-{_fillers.Count}");
        _fillers.Add(path);
        var chunk = new byte[1 << 20];
        Array.Fill(chunk, (byte)0xAB);
        using var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write);
        for (long written = 0; written < bytes; written += chunk.Length)
            file.Write(chunk, 0, (int)Math.Min(chunk.Length, bytes - written));
        return path;
    }

    /// <summary>Takes every byte still free (a file written until the disk refuses).</summary>
    public string FillUp()
    {
        var path = System.IO.Path.Combine(Path, $"filler-{_fillers.Count}");
        _fillers.Add(path);
        var chunk = new byte[4096];
        using var handle = File.OpenHandle(path, FileMode.CreateNew, FileAccess.Write);
        long offset = 0;
        try
        {
            while (true) { RandomAccess.Write(handle, chunk, offset); offset += chunk.Length; }
        }
        catch (IOException) { } // full
        return path;
    }

    public void Dispose()
    {
        // A process of the test may still hold files here: then detach it now, freed when they close.
        if (!TryRun("umount", Path)) TryRun("umount", "-l", Path);
    }

    private static void Run(string command, params string[] args)
    {
        if (!TryRun(command, args, out var error)) throw new InvalidOperationException($"{command} {string.Join(' ', args)} failed: {error}");
    }

    private static bool TryRun(string command, params string[] args) => TryRun(command, args, out _);

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
