using System.CommandLine;
using Spectre.Console;
using Storage.Core.Api;
using Storage.Core.Grpc;
using Storage.Proto.Compute;

namespace Storage.Cli.Commands;

/// <summary>
/// `storagectl up`: start (or bring back) three safekeepers, a pageserver and one compute VM, create
/// the default timeline once (initdb on the pageserver, then the safekeepers), attach endpoint `main` to the VM and print its
/// postgresql:// connection string.
/// </summary>
public static class UpCommand
{
    public static Command Create()
    {
        var basePort = new Option<int>("--base-port") { Description = "gRPC port of sk1 (sk2, sk3 follow; ps1 uses base+5; vm1 uses base+20, base+30 for HTTP, PostgreSQL on base+40)", DefaultValueFactory = _ => 7671 };
        var httpBasePort = new Option<int?>("--http-base-port") { Description = "HTTP/metrics port of sk1 (default: base port + 10)" };
        var command = new Command("up", "start the local cluster (three safekeepers, a pageserver, one compute VM) and print the connection string") { basePort, httpBasePort };
        command.SetAction((result, ct) => CliRunner.RunAsync(() => RunAsync(CommonOptions.ClusterDir(result),
            result.GetValue(basePort), result.GetValue(httpBasePort), ct)));
        return command;
    }

    private static async Task<int> RunAsync(ClusterDirectory dir, int basePort, int? httpBasePort, CancellationToken ct)
    {
        var state = dir.TryLoad();
        bool firstStart = state is null;
        state ??= ClusterState.New(TimelineIds.New(), TimelineIds.New(), basePort, httpBasePort ?? basePort + 10);
        dir.Save(state);

        var stopped = state.Processes.Where(p => !ClusterProcesses.IsRunning(p)).ToList();
        if (stopped.Count > 0) await StartAllAsync(dir, state, stopped);

        var safekeepers = state.Safekeepers.Select(s => s.Uri).ToList();
        if (firstStart)
        {
            await AnsiConsole.Status().StartAsync("creating the default timeline (initdb on the pageserver)...", async _ =>
            {
                var info = await TimelineCommand.CreateOnPageserverAsync(state, state.TenantId, state.TimelineId, ct);
                AnsiConsole.MarkupLine($"created timeline tenant [bold]{state.TenantId}[/] timeline [bold]{state.TimelineId}[/], WAL from {new Core.Lsn(info.StartLsn)}");
            });
        }

        var endpoint = state.Endpoint ?? throw new CliError("cluster.json has no endpoint");
        var vm = state.Computes.Single(c => c.Name == endpoint.Vm);
        var status = await ComputeClient.StatusAsync(vm);
        if (status.State != ComputeState.Running)
        {
            await AnsiConsole.Status().StartAsync($"attaching endpoint {endpoint.Id} to {vm.Name}...", async _ =>
            {
                var request = new AttachRequest
                {
                    TenantId = state.TenantId,
                    TimelineId = state.TimelineId,
                    Endpoint = new EndpointSettings { EndpointId = endpoint.Id, RoleName = endpoint.RoleName, RolePassword = endpoint.Password },
                };
                request.Safekeepers.AddRange(safekeepers.Select(u => u.ToString()));
                request.Pageservers.AddRange(state.Pageservers.Select(p => p.Uri.ToString()));
                try { status = await ComputeClient.AttachAsync(vm, request, ct); }
                catch (RpcException e) { throw new CliError($"attach of endpoint {endpoint.Id} to {vm.Name} failed: {e.Detail} (logs in {dir.LogFile(vm)})"); }
            });
            AnsiConsole.MarkupLine($"endpoint [bold]{endpoint.Id}[/] runs on {vm.Name}: PostgreSQL on 127.0.0.1:{vm.PostgresPort}, term {status.Term}, WAL from {new Core.Lsn(status.StartLsn)}");
        }
        else AnsiConsole.MarkupLine($"endpoint [bold]{endpoint.Id}[/] already runs on {vm.Name}");

        // On a line of its own, for people and scripts alike.
        Console.WriteLine(status.ConnectionString);
        return 0;
    }

    /// <summary>Starts processes in parallel, reporting each as it becomes ready and recording its PID at once.</summary>
    private static async Task StartAllAsync(ClusterDirectory dir, ClusterState state, IReadOnlyList<IProcessEntry> toStart)
    {
        var processes = new ClusterProcesses(dir);
        var saveLock = new object();
        await AnsiConsole.Status().StartAsync($"starting {string.Join(", ", toStart.Select(s => s.Name))}...", async _ =>
        {
            await Task.WhenAll(toStart.Select(async p =>
            {
                await processes.StartAsync(p, state);
                lock (saveLock) dir.Save(state); // so down can stop it even if a later step fails
                AnsiConsole.MarkupLine($"[green]ready[/] {Describe(p)}");
            }));
        });
    }

    private static string Describe(IProcessEntry p) => p switch
    {
        SafekeeperEntry sk => $"{sk.Name} ({sk.AvailabilityZone}) pid {sk.Pid} on 127.0.0.1:{sk.Port}, metrics on :{sk.HttpPort}",
        PageserverEntry ps => $"{ps.Name} (pageserver) pid {ps.Pid} on 127.0.0.1:{ps.Port}, metrics on :{ps.HttpPort}",
        ComputeEntry vm => $"{vm.Name} (compute VM) pid {vm.Pid} on 127.0.0.1:{vm.Port}, metrics on :{vm.HttpPort}",
        _ => p.Name,
    };
}
