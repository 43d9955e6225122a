namespace Storage.Core.Postgres;

/// <summary>
/// Every process of one PostgreSQL instance: the postmaster and all its children (backends,
/// walsenders, background workers). SIGKILL of the postmaster alone is not enough to fence a
/// compute: each child is its own process group leader (PostgreSQL calls setsid), and a backend
/// busy in a long query only notices its postmaster's death when it next waits, so it could keep
/// answering on an old connection. PostgreSQL changes every one of its processes' working
/// directory to the data directory, which is how they are found, orphans included.
/// </summary>
public static class PostgresProcesses
{
    /// <summary>The PIDs of postgres processes whose working directory is <paramref name="dataDirectory"/>.</summary>
    public static List<int> Find(string dataDirectory)
    {
        var target = Normalize(dataDirectory);
        var found = new List<int>();
        if (!OperatingSystem.IsLinux()) return found;
        foreach (var entry in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(entry), out var pid)) continue;
            try
            {
                if (!File.ReadAllText(Path.Combine(entry, "comm")).StartsWith("postgres", StringComparison.Ordinal)) continue;
                var cwd = new DirectoryInfo(Path.Combine(entry, "cwd")).LinkTarget;
                if (cwd is not null && Normalize(cwd) == target) found.Add(pid);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { } // gone meanwhile, or not ours to see
        }
        return found;
    }

    /// <summary>
    /// SIGKILLs the whole instance: the postmaster is stopped first (SIGSTOP) so it cannot start
    /// new children while they are collected, then every process is killed. Returns once none is
    /// left (bounded by <paramref name="timeout"/>); returns the PIDs killed.
    /// </summary>
    public static async Task<IReadOnlyList<int>> KillAllAsync(string dataDirectory, int? postmasterPid = null, TimeSpan? timeout = null)
    {
        var victims = SigKillAll(dataDirectory, postmasterPid);
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(10));
        while (victims.Any(IsRunning) && DateTime.UtcNow < deadline) await Task.Delay(10);
        return victims;
    }

    /// <summary>Sends the SIGKILLs of <see cref="KillAllAsync"/> without waiting for the processes to go; returns the PIDs.</summary>
    public static List<int> SigKillAll(string dataDirectory, int? postmasterPid = null)
    {
        if (postmasterPid is { } pm && IsPostgres(pm)) OsUser.Signal(pm, OsUser.SigStop);
        var victims = Find(dataDirectory);
        if (postmasterPid is { } p && IsPostgres(p) && !victims.Contains(p)) victims.Add(p);
        foreach (var pid in victims) OsUser.Signal(pid, OsUser.SigKill);
        return victims;
    }

    private static bool IsPostgres(int pid)
    {
        try { return File.ReadAllText($"/proc/{pid}/comm").StartsWith("postgres", StringComparison.Ordinal); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
    }

    /// <summary>Alive and not a zombie (a killed child of ours stays a zombie until reaped).</summary>
    private static bool IsRunning(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var state = stat[(stat.LastIndexOf(')') + 2)..];
            return !state.StartsWith('Z') && !state.StartsWith('X');
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
    }

    private static string Normalize(string path) => Path.TrimEndingDirectorySeparator(Path.GetFullPath(path));
}
