using Storage.Core.Processes;

namespace Storage.Cli;

/// <summary>Starts, stops and kills the safekeepers of a local cluster, always by their recorded PID.</summary>
public sealed class SafekeeperProcesses(ClusterDirectory dir)
{
    public static bool IsRunning(SafekeeperEntry sk) => sk.Pid is int pid && ServiceProcess.IsAlive(pid);

    /// <summary>Starts a safekeeper detached (it outlives storagectl) and records its PID.</summary>
    public async Task StartAsync(SafekeeperEntry sk)
    {
        var args = SafekeeperCommand.Arguments((ulong)sk.Id, sk.Port, sk.HttpPort, dir.DataDir(sk), sk.AvailabilityZone);
        try
        {
            var process = await ServiceProcess.StartAsync(SafekeeperCommand.Assembly, args, dir.LogFile(sk), detached: true);
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
        await ServiceProcess.StopPidAsync(pid, grace);
        sk.Pid = null;
    }

    /// <summary>SIGKILL at once (chaos runs); waits briefly until the PID is gone.</summary>
    public static async Task KillAsync(SafekeeperEntry sk)
    {
        if (sk.Pid is int pid) await ServiceProcess.KillPidAsync(pid);
    }
}
