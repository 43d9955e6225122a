using System.CommandLine;
using Spectre.Console;
using Storage.Core.Api;

namespace Storage.Cli.Commands;

/// <summary>`storagectl up`: start (or restart) the three safekeepers, create the default timeline once, run the WAL demo.</summary>
public static class UpCommand
{
    public static Command Create()
    {
        var basePort = new Option<int>("--base-port") { Description = "gRPC port of sk1 (sk2, sk3 follow)", DefaultValueFactory = _ => 7671 };
        var httpBasePort = new Option<int?>("--http-base-port") { Description = "HTTP/metrics port of sk1 (default: base port + 10)" };
        var demoMb = new Option<int>("--demo-mb") { Description = "MiB of WAL the demo streams (0 skips the demo)", DefaultValueFactory = _ => 4 };
        var command = new Command("up", "start the local cluster (three safekeepers) and stream demo WAL through it") { basePort, httpBasePort, demoMb };
        command.SetAction((result, ct) => CliRunner.RunAsync(() => RunAsync(CommonOptions.ClusterDir(result),
            result.GetValue(basePort), result.GetValue(httpBasePort), result.GetValue(demoMb), ct)));
        return command;
    }

    private static async Task<int> RunAsync(ClusterDirectory dir, int basePort, int? httpBasePort, int demoMb, CancellationToken ct)
    {
        var state = dir.TryLoad();
        bool firstStart = state is null;
        state ??= ClusterState.New(TimelineIds.New(), TimelineIds.New(), basePort, httpBasePort ?? basePort + 10);

        var stopped = state.Safekeepers.Where(s => !SafekeeperProcesses.IsRunning(s)).ToList();
        if (stopped.Count == 0)
        {
            AnsiConsole.MarkupLine($"cluster in {Markup.Escape(dir.Root)} is already running: " +
                string.Join(", ", state.Safekeepers.Select(s => $"{s.Name} pid {s.Pid}")));
            return 0;
        }

        dir.Save(state);
        await StartAllAsync(dir, state, stopped);

        if (firstStart)
        {
            foreach (var sk in state.Safekeepers)
                await SafekeeperClient.CreateTimelineAsync(sk, state.TenantId, state.TimelineId, WalDemo.TimelineStart);
            AnsiConsole.MarkupLine($"created timeline tenant [bold]{state.TenantId}[/] timeline [bold]{state.TimelineId}[/] at {WalDemo.TimelineStart}");
        }

        if (demoMb > 0)
        {
            var commit = await new WalDemo(dir, state).RunAsync(demoMb * 1024 * 1024, ct);
            AnsiConsole.MarkupLine($"commit LSN: [bold]{commit}[/]");
            await PrintSafekeeperLsnsAsync(state);
        }
        return 0;
    }

    /// <summary>Starts safekeepers in parallel, reporting each as it becomes ready and recording its PID at once.</summary>
    private static async Task StartAllAsync(ClusterDirectory dir, ClusterState state, IReadOnlyList<SafekeeperEntry> toStart)
    {
        var processes = new SafekeeperProcesses(dir);
        var saveLock = new object();
        await AnsiConsole.Status().StartAsync($"starting {string.Join(", ", toStart.Select(s => s.Name))}...", async _ =>
        {
            await Task.WhenAll(toStart.Select(async sk =>
            {
                await processes.StartAsync(sk);
                lock (saveLock) dir.Save(state); // so down can stop it even if a later step fails
                AnsiConsole.MarkupLine($"[green]ready[/] {sk.Name} ({sk.AvailabilityZone}) pid {sk.Pid} on 127.0.0.1:{sk.Port}, metrics on :{sk.HttpPort}");
            }));
        });
    }

    private static async Task PrintSafekeeperLsnsAsync(ClusterState state)
    {
        foreach (var sk in state.Safekeepers)
        {
            try
            {
                var status = await SafekeeperClient.StatusAsync(sk, state.TenantId, state.TimelineId);
                AnsiConsole.MarkupLine($"{sk.Name}: flush {new Core.Lsn(status.FlushLsn)}, commit {new Core.Lsn(status.CommitLsn)}");
            }
            catch (Core.Grpc.RpcException e)
            {
                AnsiConsole.MarkupLine($"{sk.Name}: [red]unreachable[/] ({Markup.Escape(e.Detail)})");
            }
        }
    }
}
