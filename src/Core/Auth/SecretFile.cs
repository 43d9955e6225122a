namespace Storage.Core.Auth;

/// <summary>
/// Files that hold secrets (keys, tokens, passwords): created readable by their owner only (0600)
/// before anything is written into them, and read back with a check that nobody else can read them.
/// </summary>
public static class SecretFile
{
    private const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <summary>Writes <paramref name="text"/> to a new or replaced 0600 file (atomically: temp, fsync, rename).</summary>
    public static void Write(string path, string text)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var temp = path + ".tmp";
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = OwnerOnly; // never readable by others, not even for a moment
        using (var file = new FileStream(temp, options))
        {
            if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(temp, OwnerOnly); // an old temp file keeps its mode
            var bytes = System.Text.Encoding.UTF8.GetBytes(text);
            file.Write(bytes);
            file.Flush(flushToDisk: true);
        }
        File.Move(temp, path, overwrite: true);
        Storage.FileSync.SyncDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
    }

    /// <summary>Reads a secret; refuses a file that others can read (a secret that leaked is no secret).</summary>
    public static string Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"secret file {path} does not exist", path);
        if (!OperatingSystem.IsWindows() && (File.GetUnixFileMode(path) & ~(OwnerOnly | UnixFileMode.UserExecute)) != 0)
            throw new UnauthorizedAccessException($"secret file {path} is readable by others ({File.GetUnixFileMode(path)}); chmod 600 it");
        return File.ReadAllText(path).Trim();
    }
}
