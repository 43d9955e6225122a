using Storage.Core.Postgres;
using Storage.Core.Processes;

namespace Storage.Cli;

/// <summary>Starts, stops and kills the safekeepers of a local cluster, always by their recorded PID.</summary>
public sealed class SafekeeperProcesses(ClusterDirectory dir)
{
    public static bool IsRunning(SafekeeperEntry sk) => sk.Pid is int pid && ServiceProcess.IsAlive(pid);

    /// <summary>Starts a safekeeper detached (it outlives storagectl) and records its PID.</summary>
    public async Task StartAsync(SafekeeperEntry sk)
    {
        var args = new[]
        {
            "--id", sk.Id.ToString(), "--listen", $"127.0.0.1:{sk.Port}", "--http", $"127.0.0.1:{sk.HttpPort}",
            "--data-dir", dir.DataDir(sk), "--az", sk.AvailabilityZone,
        };
        try
        {
            var process = await ServiceProcess.StartAsync(ServiceProcess.AssemblyBeside("Storage.Safekeeper"), args, dir.LogFile(sk), detached: true);
            sk.Pid = process.Pid;
        }
        catch (InvalidOperationException e)
        {
            // The launcher's message ends with the log tail; the first line is enough here.
            throw new CliError($"{sk.Name} did not start ({e.Message.Split('\n')[0]})");
        }
    }

    /// <summary>SIGTERM, up to <paramref name="grace"/> to exit, then SIGKILL.</summary>
    public static async Task StopAsync(SafekeeperEntry sk, TimeSpan grace)
    {
        if (sk.Pid is not int pid) return;
        if (ServiceProcess.IsAlive(pid))
        {
            OsUser.Signal(pid, OsUser.SigTerm);
            var deadline = DateTime.UtcNow + grace;
            while (ServiceProcess.IsAlive(pid) && DateTime.UtcNow < deadline) await Task.Delay(25);
            if (ServiceProcess.IsAlive(pid)) await KillAsync(sk);
        }
        sk.Pid = null;
    }

    /// <summary>SIGKILL at once (chaos runs); waits briefly until the PID is gone.</summary>
    public static async Task KillAsync(SafekeeperEntry sk)
    {
        if (sk.Pid is not int pid) return;
        OsUser.Signal(pid, OsUser.SigKill);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        while (ServiceProcess.IsAlive(pid) && DateTime.UtcNow < deadline) await Task.Delay(10);
    }
}
