using System.CommandLine;

namespace Storage.Cli.Commands;

/// <summary>`down`, `safekeeper start|stop N`, `kill COMPONENT`, `start COMPONENT`: one process or all, by PID.</summary>
public static class ProcessCommands
{
    private static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(10);

    public static Command Down()
    {
        var command = new Command("down", "stop every process of the local cluster (SIGTERM, then SIGKILL)");
        command.SetAction(result => CliRunner.RunAsync(async () =>
        {
            var dir = CommonOptions.ClusterDir(result);
            var state = dir.Load();
            await Task.WhenAll(state.Safekeepers.Select(sk => StopAndReportAsync(sk)));
            dir.Save(state);
            return 0;
        }));
        return command;
    }

    public static Command Safekeeper()
    {
        var command = new Command("safekeeper", "manage one safekeeper");
        command.Add(OneComponent("start", "start a safekeeper (1..3 or sk1..sk3)", StartAsync));
        command.Add(OneComponent("stop", "stop a safekeeper (SIGTERM, then SIGKILL)", (_, sk) => StopAndReportAsync(sk)));
        return command;
    }

    public static Command Kill() => OneComponent("kill", "SIGKILL a component (sk1..sk3), for chaos runs", async (_, sk) =>
    {
        if (!SafekeeperProcesses.IsRunning(sk)) { Console.WriteLine($"{sk.Name} is not running"); return; }
        await SafekeeperProcesses.KillAsync(sk);
        Console.WriteLine($"killed {sk.Name} (pid {sk.Pid})");
    });

    public static Command Start() => OneComponent("start", "start a stopped or killed component (sk1..sk3)", StartAsync);

    /// <summary>A command taking one component name; saves cluster.json after the action.</summary>
    private static Command OneComponent(string name, string description, Func<ClusterDirectory, SafekeeperEntry, Task> action)
    {
        var component = new Argument<string>("component") { Description = "sk1..sk3, or 1..3" };
        var command = new Command(name, description) { component };
        command.SetAction(result => CliRunner.RunAsync(async () =>
        {
            var dir = CommonOptions.ClusterDir(result);
            var state = dir.Load();
            await action(dir, state.Find(result.GetValue(component)!));
            dir.Save(state);
            return 0;
        }));
        return command;
    }

    private static async Task StartAsync(ClusterDirectory dir, SafekeeperEntry sk)
    {
        if (SafekeeperProcesses.IsRunning(sk)) { Console.WriteLine($"{sk.Name} is already running (pid {sk.Pid})"); return; }
        await new SafekeeperProcesses(dir).StartAsync(sk);
        Console.WriteLine($"started {sk.Name} ({sk.AvailabilityZone}) pid {sk.Pid} on 127.0.0.1:{sk.Port}");
    }

    private static async Task StopAndReportAsync(SafekeeperEntry sk)
    {
        if (!SafekeeperProcesses.IsRunning(sk)) { Console.WriteLine($"{sk.Name} is not running"); sk.Pid = null; return; }
        var pid = sk.Pid;
        await SafekeeperProcesses.StopAsync(sk, StopGrace);
        Console.WriteLine($"stopped {sk.Name} (pid {pid})");
    }
}
