using System.CommandLine;
using Storage.Core.Postgres;
using Storage.Core.Processes;

namespace Storage.Cli.Commands;

/// <summary>`down`, `safekeeper start|stop N`, `kill COMPONENT`, `start COMPONENT`: one process or all, by PID.</summary>
public static class ProcessCommands
{
    private static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(30);
    private const string Components = "sk1..sk3 (or 1..3), ps1, vm1, or postgres (the endpoint's PostgreSQL; kill only)";

    public static Command Down()
    {
        var command = new Command("down", "stop every process of the local cluster (SIGTERM, then SIGKILL)");
        command.SetAction(result => CliRunner.RunAsync(async () =>
        {
            var dir = CommonOptions.ClusterDir(result);
            var state = dir.Load();
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
        if (name.Equals("postgres", StringComparison.OrdinalIgnoreCase))
        {
            var vm = state.Computes.Single(c => c.Name == state.Endpoint?.Vm);
            if (new ClusterProcesses(dir).PostmasterPid(vm) is not int postmaster) { Console.WriteLine($"no PostgreSQL runs on {vm.Name}"); return; }
            OsUser.Signal(postmaster, OsUser.SigKill);
            Console.WriteLine($"killed PostgreSQL of endpoint {state.Endpoint?.Id} on {vm.Name} (pid {postmaster})");
            return;
        }
        var process = state.FindProcess(name);
        if (!ClusterProcesses.IsRunning(process)) { Console.WriteLine($"{process.Name} is not running"); return; }
        await new ClusterProcesses(dir).KillAsync(process);
        Console.WriteLine($"killed {process.Name} (pid {process.Pid})");
    });

    public static Command Start() => OneComponent("start", "start a stopped or killed component (sk1..sk3, ps1, vm1)",
        (dir, state, name) => StartAsync(dir, state, state.FindProcess(name)));

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
        Console.WriteLine($"started {process.Name} pid {process.Pid}{(process is ComputeEntry ? " (idle; `storagectl up` attaches the endpoint)" : "")}");
    }

    private static async Task StopAndReportAsync(IProcessEntry process)
    {
        if (!ClusterProcesses.IsRunning(process)) { Console.WriteLine($"{process.Name} is not running"); process.Pid = null; return; }
        var pid = process.Pid;
        await ClusterProcesses.StopAsync(process, StopGrace);
        Console.WriteLine($"stopped {process.Name} (pid {pid})");
    }
}
