using System.Globalization;

namespace Storage.Core.Postgres;

/// <summary>
/// The file (postgres.pid in a VM's work directory) where a compute agent records its running
/// PostgreSQL for tools outside it (the control plane's fencing, `storagectl kill postgres:`):
/// the postmaster's PID on the first line, its data directory on the second. The data directory
/// is what finds every process of the instance when the postmaster itself is gone
/// (<see cref="PostgresProcesses"/>).
/// </summary>
public sealed record PostmasterRecord(int Pid, string DataDirectory)
{
    public const string FileName = "postgres.pid";

    public static string PathIn(string workDirectory) => System.IO.Path.Combine(workDirectory, FileName);

    public void WriteTo(string workDirectory) =>
        File.WriteAllText(PathIn(workDirectory), $"{Pid.ToString(CultureInfo.InvariantCulture)}\n{DataDirectory}\n");

    /// <summary>The record in <paramref name="workDirectory"/>, or null when none is there (no PostgreSQL ran) or it is unreadable.</summary>
    public static PostmasterRecord? ReadFrom(string workDirectory)
    {
        try
        {
            var lines = File.ReadAllLines(PathIn(workDirectory));
            return lines.Length >= 2 && int.TryParse(lines[0], NumberStyles.None, CultureInfo.InvariantCulture, out var pid)
                ? new PostmasterRecord(pid, lines[1]) : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }

    /// <summary>SIGKILLs every process of this PostgreSQL (see <see cref="PostgresProcesses.KillAllAsync"/>).</summary>
    public Task<IReadOnlyList<int>> KillAllAsync() => PostgresProcesses.KillAllAsync(DataDirectory, Pid);
}
