using Storage.Core.Postgres;
using Storage.Core.Processes;

namespace Storage.Cli;

/// <summary>Starts, stops and kills the processes of a local cluster, always by their recorded PID.</summary>
public sealed class ClusterProcesses(ClusterDirectory dir)
{
    public static bool IsRunning(IProcessEntry process) => process.Pid is int pid && ServiceProcess.IsAlive(pid);

    /// <summary>Starts any process of <paramref name="state"/>; a pageserver is given the cluster's safekeepers.</summary>
    public Task StartAsync(IProcessEntry process, ClusterState state) => process switch
    {
        SafekeeperEntry sk => StartAsync(sk),
        PageserverEntry ps => StartAsync(ps, state.Safekeepers.Select(s => s.Uri)),
        ComputeEntry vm => StartAsync(vm),
        _ => throw new ArgumentException($"cannot start {process.Name}: unknown kind of process"),
    };

    /// <summary>Starts a safekeeper detached (it outlives storagectl) and records its PID.</summary>
    public Task StartAsync(SafekeeperEntry sk) =>
        StartAsync(sk, SafekeeperCommand.Assembly, SafekeeperCommand.Arguments((ulong)sk.Id, sk.Port, sk.HttpPort, dir.DataDir(sk), sk.AvailabilityZone,
            extra: ["--remote-storage", dir.RemoteStorage]));

    /// <summary>Starts a pageserver detached and records its PID.</summary>
    public Task StartAsync(PageserverEntry ps, IEnumerable<Uri> safekeepers) =>
        StartAsync(ps, PageserverCommand.Assembly, PageserverCommand.Arguments(ps.Name, ps.Port, ps.HttpPort, dir.DataDir(ps), safekeepers,
            extra: ["--remote-storage", dir.RemoteStorage]));

    /// <summary>Starts a compute agent (an idle VM) detached and records its PID.</summary>
    public Task StartAsync(ComputeEntry vm) =>
        StartAsync(vm, ComputeCommand.Assembly, ComputeCommand.Arguments(vm.Name, vm.Port, vm.HttpPort, dir.WorkDir(vm), vm.PostgresPort));

    private async Task StartAsync(IProcessEntry entry, string assembly, string[] args)
    {
        try
        {
            var process = await ServiceProcess.StartAsync(assembly, args, dir.LogFile(entry), detached: true, readyTimeout: TimeSpan.FromSeconds(60));
            entry.Pid = process.Pid;
        }
        catch (InvalidOperationException e)
        {
            // The launcher's message ends with the log tail; the first line is enough here.
            throw new CliError($"{entry.Name} did not start ({e.Message.Split('\n')[0]})");
        }
    }

    /// <summary>SIGTERM, up to <paramref name="grace"/> to exit, then SIGKILL.</summary>
    public static async Task StopAsync(IProcessEntry process, TimeSpan grace)
    {
        if (process.Pid is not int pid) return;
        await ServiceProcess.StopPidAsync(pid, grace);
        process.Pid = null;
    }

    /// <summary>
    /// SIGKILL at once (chaos runs); waits briefly until the PID is gone. A VM dies with its
    /// PostgreSQL, like a real machine: the postmaster named in its data directory is killed too.
    /// </summary>
    public async Task KillAsync(IProcessEntry process)
    {
        if (process.Pid is int pid) await ServiceProcess.KillPidAsync(pid);
        if (process is ComputeEntry vm && PostmasterPid(vm) is int postmaster) await ServiceProcess.KillPidAsync(postmaster);
        // A pageserver's replay PostgreSQL instances die with its machine too.
        if (process is PageserverEntry ps && Directory.Exists(dir.DataDir(ps)))
            foreach (var pidFile in Directory.EnumerateFiles(dir.DataDir(ps), "postmaster.pid", SearchOption.AllDirectories))
                PostgresServer.KillLeftoverPostmaster(Path.GetDirectoryName(pidFile)!);
    }

    /// <summary>The PID of the PostgreSQL a VM runs (its agent records it in postgres.pid), if it is running.</summary>
    public int? PostmasterPid(ComputeEntry vm)
    {
        var file = Path.Combine(dir.WorkDir(vm), "postgres.pid");
        try
        {
            return File.Exists(file) && int.TryParse(File.ReadLines(file).FirstOrDefault(), out var pid) && OsUser.Signal(pid, 0) ? pid : null;
        }
        catch (IOException) { return null; }
    }
}
