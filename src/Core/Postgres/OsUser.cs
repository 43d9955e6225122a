using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Storage.Core.Postgres;

/// <summary>
/// PostgreSQL's server programs (initdb, postgres, pg_ctl) refuse to run as root. When we are root,
/// this starts them as the 'postgres' OS user through setpriv, which execs (so the PID we get is the
/// program itself, unlike su/runuser which fork), and hands directories over to that user.
/// When we are not root everything runs directly as the current user.
/// </summary>
public static partial class OsUser
{
    public const string PostgresUser = "postgres";

    [LibraryImport("libc", SetLastError = true)]
    private static partial uint geteuid();

    [LibraryImport("libc", SetLastError = true)]
    private static partial int kill(int pid, int signal);

    public const int SigInt = 2;
    public const int SigQuit = 3;
    public const int SigKill = 9;
    public const int SigTerm = 15;
    public const int SigCont = 18;
    public const int SigStop = 19;

    public static bool IsRoot => OperatingSystem.IsLinux() && geteuid() == 0;

    /// <summary>
    /// A start description for a program that must not run as root: wrapped in setpriv when root.
    /// </summary>
    public static ProcessStartInfo StartInfoAsPostgres(string program, IEnumerable<string> arguments)
    {
        var psi = new ProcessStartInfo { UseShellExecute = false };
        if (IsRoot)
        {
            psi.FileName = "setpriv";
            foreach (var a in new[] { $"--reuid={PostgresUser}", $"--regid={PostgresUser}", "--init-groups", "--", program })
                psi.ArgumentList.Add(a);
        }
        else
        {
            psi.FileName = program;
        }
        foreach (var a in arguments) psi.ArgumentList.Add(a);
        return psi;
    }

    /// <summary>Makes the postgres user own a directory tree (no-op unless we are root).</summary>
    public static async Task GiveToPostgresAsync(string path, CancellationToken ct = default)
    {
        if (!IsRoot) return;
        var psi = new ProcessStartInfo("chown") { UseShellExecute = false };
        foreach (var a in new[] { "-R", $"{PostgresUser}:{PostgresUser}", path }) psi.ArgumentList.Add(a);
        var result = await ProcessRunner.RunAsync(psi, TimeSpan.FromSeconds(60), ct);
        result.ThrowIfFailed("chown");
    }

    /// <summary>
    /// Whether the postgres user can reach <paramref name="path"/>: every ancestor directory must be
    /// searchable by others (we are root, postgres is not the owner). Always true when not root.
    /// </summary>
    public static bool CanPostgresReach(string path)
    {
        if (!IsRoot || OperatingSystem.IsWindows()) return true;
        for (var dir = Path.GetDirectoryName(Path.GetFullPath(path)); !string.IsNullOrEmpty(dir); dir = Path.GetDirectoryName(dir))
            if (Directory.Exists(dir) && !File.GetUnixFileMode(dir).HasFlag(UnixFileMode.OtherExecute)) return false;
        return true;
    }

    /// <summary>
    /// A directory for PostgreSQL's files (a cache): <paramref name="preferred"/> when the postgres
    /// user can reach it, else a folder under the system temp directory named after it (a root
    /// user's home is 0700, and PostgreSQL runs as postgres).
    /// </summary>
    public static string ReachableDirectory(string preferred, string label)
    {
        if (CanPostgresReach(Path.Combine(preferred, "x"))) return preferred;
        var hash = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(Path.GetFullPath(preferred))))[..12];
        return Path.Combine(Path.GetTempPath(), $"storage-{label}-{hash.ToLowerInvariant()}");
    }

    /// <summary>Sends a signal to one process id. Returns false if the process no longer exists.</summary>
    public static bool Signal(int pid, int signal) => kill(pid, signal) == 0;
}
