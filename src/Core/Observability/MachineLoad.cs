namespace Storage.Core.Observability;

/// <summary>How busy the machine is, for benchmark reports: figures measured under load are read differently.</summary>
public static class MachineLoad
{
    /// <summary>The 1, 5 and 15 minute load averages from /proc/loadavg ("n/a" where there is none).</summary>
    public static string Average() =>
        File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a";
}
