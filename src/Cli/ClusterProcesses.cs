using Storage.Core.Auth;
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
        SafekeeperEntry sk => StartAsync(sk, state),
        PageserverEntry ps => StartAsync(ps, state),
        ProxyEntry proxy => StartAsync(proxy, state),
        ControllerEntry controller => StartAsync(controller),
        _ => throw new ArgumentException($"cannot start {process.Name}: unknown kind of process"),
    };

    /// <summary>Starts a safekeeper detached (it outlives storagectl) and records its PID.</summary>
    public Task StartAsync(SafekeeperEntry sk, ClusterState state) =>
        StartAsync(sk, SafekeeperCommand.Assembly, SafekeeperCommand.Arguments((ulong)sk.Id, sk.Port, sk.HttpPort, dir.DataDir(sk), sk.AvailabilityZone,
            extra: [.. dir.Secrets.VerifierArguments(), .. ObjectStoreArguments(state)]));

    /// <summary>Starts a pageserver detached and records its PID.</summary>
    public Task StartAsync(PageserverEntry ps, ClusterState state) =>
        StartAsync(ps, PageserverCommand.Assembly, PageserverCommand.Arguments(ps.Name, ps.Port, ps.HttpPort, dir.DataDir(ps), state.Safekeepers.Select(s => s.Uri),
            extra: [.. dir.Secrets.ServiceArguments(Scope.Pageserver, ps.Name), .. ObjectStoreArguments(state), .. ControllerArguments(state)]));

    /// <summary>Starts the storage controller detached and records its PID.</summary>
    public Task StartAsync(ControllerEntry controller) =>
        StartAsync(controller, ControllerCommand.Assembly, ControllerCommand.Arguments(controller.Port, controller.HttpPort, dir.ControllerDir,
            auth: dir.Secrets.ServiceAuth(Scope.Controller, "controller")));

    private static IEnumerable<string> ControllerArguments(ClusterState state) =>
        state.Controller is { } controller ? ["--controller", controller.Uri.ToString()] : [];

    private IEnumerable<string> ObjectStoreArguments(ClusterState state) =>
        (state.ObjectStore ?? new ObjectStoreEntry(null, null, null, null, null)).Arguments(dir.RemoteStorage);

    /// <summary>
    /// Starts the proxy with its control plane detached and records its PID. It is ready once its pool
    /// is full (VMs it adopts from a previous run count), hence the longer wait.
    /// </summary>
    public Task StartAsync(ProxyEntry proxy, ClusterState state) =>
        StartAsync(proxy, ProxyCommand.Assembly, ProxyCommand.Arguments(proxy.Port, proxy.AdminPort, dir.ControlPlaneDir,
            state.Safekeepers.Select(s => s.Uri), state.Pageservers.Select(p => p.Uri), proxy.PoolSize,
            extra: ["--default-endpoint", state.Endpoint?.Id ?? "main", .. ControllerArguments(state), .. dir.Secrets.ControlPlaneArguments()]), TimeSpan.FromSeconds(150));

    private async Task StartAsync(IProcessEntry entry, string assembly, string[] args, TimeSpan? readyTimeout = null)
    {
        try
        {
            var process = await ServiceProcess.StartAsync(assembly, args, dir.LogFile(entry), detached: true, readyTimeout: readyTimeout ?? TimeSpan.FromSeconds(60));
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
    /// SIGKILL at once (chaos runs); waits briefly until the PID is gone. A killed proxy leaves its
    /// VMs running, as a crash would: the next proxy adopts them.
    /// </summary>
    public async Task KillAsync(IProcessEntry process)
    {
        if (process.Pid is int pid) await ServiceProcess.KillPidAsync(pid);
        // A pageserver's replay PostgreSQL instances die with its machine too.
        if (process is PageserverEntry ps && Directory.Exists(dir.DataDir(ps)))
            foreach (var pidFile in Directory.EnumerateFiles(dir.DataDir(ps), "postmaster.pid", SearchOption.AllDirectories))
                PostgresServer.KillLeftoverPostmaster(Path.GetDirectoryName(pidFile)!);
    }

    /// <summary>The PID of the PostgreSQL a VM runs (its agent records it in postgres.pid of its work directory), if it is running.</summary>
    public static int? PostmasterPid(string vmWorkDir) =>
        PostmasterRecord.ReadFrom(vmWorkDir) is { } record && OsUser.Signal(record.Pid, 0) ? record.Pid : null;
}
