using Storage.Core.Postgres;

namespace Storage.Cli.Chaos;

/// <summary>
/// Freezes and thaws whole process trees with SIGSTOP/SIGCONT: a frozen machine stops every process
/// on it (a pageserver with its replay PostgreSQL, a VM's agent with PostgreSQL and its backends).
/// Trees are found through the parent PID in /proc/PID/stat, never by name.
/// </summary>
public static class ProcessTree
{
    /// <summary>
    /// SIGSTOPs each root, then its descendants, again until no new one appears (a postmaster may fork
    /// a backend while it is being frozen). Returns every PID stopped, for <see cref="Thaw"/>.
    /// </summary>
    public static IReadOnlyList<int> Freeze(IEnumerable<int> roots)
    {
        var stopped = new List<int>();
        var seen = new HashSet<int>();
        foreach (var root in roots)
            if (seen.Add(root) && OsUser.Signal(root, OsUser.SigStop)) stopped.Add(root);
        for (int pass = 0; pass < 5; pass++)
        {
            var fresh = Descendants(stopped).Where(seen.Add).ToList();
            if (fresh.Count == 0) break;
            stopped.AddRange(fresh.Where(pid => OsUser.Signal(pid, OsUser.SigStop)));
        }
        return stopped;
    }

    /// <summary>SIGCONT to every PID (those that died meanwhile are skipped).</summary>
    public static void Thaw(IEnumerable<int> pids)
    {
        foreach (var pid in pids) OsUser.Signal(pid, OsUser.SigCont);
    }

    /// <summary>Every live descendant of <paramref name="roots"/> (children, their children, ...).</summary>
    public static IReadOnlyList<int> Descendants(IEnumerable<int> roots)
    {
        var children = ParentLinks().ToLookup(p => p.Parent, p => p.Pid);
        var found = new List<int>();
        var queue = new Queue<int>(roots);
        var seen = new HashSet<int>(queue);
        while (queue.TryDequeue(out var pid))
            foreach (var child in children[pid])
                if (seen.Add(child)) { found.Add(child); queue.Enqueue(child); }
        return found;
    }

    private static IEnumerable<(int Pid, int Parent)> ParentLinks()
    {
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid)) continue;
            string stat;
            try { stat = File.ReadAllText(Path.Combine(dir, "stat")); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { continue; } // exited meanwhile
            // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ')'.
            var fields = stat[(stat.LastIndexOf(')') + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length > 1 && int.TryParse(fields[1], out var parent)) yield return (pid, parent);
        }
    }
}
