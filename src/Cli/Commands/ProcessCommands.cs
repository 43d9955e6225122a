using System.CommandLine;
using Storage.Core.Processes;

namespace Storage.Cli.Commands;

/// <summary>`down`, `safekeeper start|stop N`, `kill COMPONENT`, `start COMPONENT`: one process or all, by PID (VMs: by the control plane's PIDs).</summary>
public static class ProcessCommands
{
    private static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(30);
    private const string Components = "sk1..sk3 (or 1..3), ps1, ps2, controller, proxy; for kill also vm:<endpoint> (its VM's agent and PostgreSQL) and postgres:<endpoint>";

    public static Command Down()
    {
        var command = new Command("down", "stop every process of the local cluster (SIGTERM, then SIGKILL)");
        command.SetAction(result => CliRunner.RunAsync(async () =>
        {
            var dir = CommonOptions.ClusterDir(result);
            var state = dir.Load();
            // A live proxy stops its VMs itself; a dead one left them to us.
            if (state.Proxy is { } proxy && !ClusterProcesses.IsRunning(proxy)) await new ControlPlaneVms(dir, state).StopOrphansAsync(StopGrace);
            foreach (var group in state.StopOrder)
                await Task.WhenAll(group.Select(StopAndReportAsync));
            dir.Save(state);
            return 0;
        }));
        return command;
    }

    public static Command Safekeeper()
    {
        var command = new Command("safekeeper", "manage one safekeeper");
        command.Add(OneComponent("start", "start a safekeeper (1..3 or sk1..sk3)", (dir, state, name) => StartAsync(dir, state, state.Find(name))));
        command.Add(OneComponent("stop", "stop a safekeeper (SIGTERM, then SIGKILL)", (_, state, name) => StopAndReportAsync(state.Find(name))));
        return command;
    }

    public static Command Kill() => OneComponent("kill", $"SIGKILL a component, for chaos runs: {Components}", async (dir, state, name) =>
    {
        if (VmComponent(name) is (string kind, string endpoint))
        {
            var vms = new ControlPlaneVms(dir, state);
            Console.WriteLine(kind == "vm" ? await vms.KillVmAsync(endpoint) : await vms.KillPostgresAsync(endpoint));
            return;
        }
        var process = state.FindProcess(name);
        if (!ClusterProcesses.IsRunning(process)) { Console.WriteLine($"{process.Name} is not running"); return; }
        await new ClusterProcesses(dir).KillAsync(process);
        Console.WriteLine($"killed {process.Name} (pid {process.Pid})");
    });

    public static Command Start() => OneComponent("start", "start a stopped or killed component (sk1..sk3, ps1, ps2, controller, proxy)", (dir, state, name) =>
        VmComponent(name) is not null
            ? throw new CliError($"{name} is not started by hand: the control plane reattaches an endpoint whose VM died, and the VM's agent restarts its PostgreSQL")
            : StartAsync(dir, state, state.FindProcess(name)));

    /// <summary>"vm:main" -> (vm, main); "postgres:main" or "postgres" (the default endpoint) -> (postgres, main); anything else null.</summary>
    private static (string Kind, string Endpoint)? VmComponent(string name)
    {
        var parts = name.Split(':', 2);
        var kind = parts[0].ToLowerInvariant();
        if (kind is not ("vm" or "postgres")) return null;
        if (parts.Length == 1 && kind == "postgres") return (kind, "main");
        return parts.Length == 2 && parts[1].Length > 0 ? (kind, parts[1]) : throw new CliError($"'{name}': name the endpoint, like {kind}:main");
    }

    /// <summary>A command taking one component name; saves cluster.json after the action.</summary>
    private static Command OneComponent(string name, string description, Func<ClusterDirectory, ClusterState, string, Task> action)
    {
        var component = new Argument<string>("component") { Description = Components };
        var command = new Command(name, description) { component };
        command.SetAction(result => CliRunner.RunAsync(async () =>
        {
            var dir = CommonOptions.ClusterDir(result);
            var state = dir.Load();
            await action(dir, state, result.GetValue(component)!);
            dir.Save(state);
            return 0;
        }));
        return command;
    }

    private static async Task StartAsync(ClusterDirectory dir, ClusterState state, IProcessEntry process)
    {
        if (ClusterProcesses.IsRunning(process)) { Console.WriteLine($"{process.Name} is already running (pid {process.Pid})"); return; }
        await new ClusterProcesses(dir).StartAsync(process, state);
        Console.WriteLine($"started {UpCommand.Describe(process)}");
    }

    private static async Task StopAndReportAsync(IProcessEntry process)
    {
        if (!ClusterProcesses.IsRunning(process)) { Console.WriteLine($"{process.Name} is not running"); process.Pid = null; return; }
        var pid = process.Pid;
        await ClusterProcesses.StopAsync(process, StopGrace);
        Console.WriteLine($"stopped {process.Name} (pid {pid})");
    }
}
