using System.CommandLine;
using Spectre.Console;
using Storage.ComputeProxy.ControlPlane;
using Storage.Core.Api;

namespace Storage.Cli.Commands;

/// <summary>
/// `storagectl up`: start (or bring back) three safekeepers, the storage controller, two pageservers
/// (attached + secondary) and the proxy with its control plane and VM pool; create the default
/// timeline once (placed by the controller: initdb on the attached pageserver, then the safekeepers)
/// and endpoint `main` in the control plane; wake it and print the proxy's postgresql:// connection string.
/// </summary>
public static class UpCommand
{
    public static Command Create()
    {
        var basePort = new Option<int>("--base-port")
        {
            Description = "gRPC port of sk1 (sk2, sk3 follow; ps1, ps2 use base+5, base+6; the controller base+7; the proxy's admin API base+18, its PostgreSQL port base+19)",
            DefaultValueFactory = _ => 7671,
        };
        var httpBasePort = new Option<int?>("--http-base-port") { Description = "HTTP/metrics port of sk1 (default: base port + 10)" };
        var s3Endpoint = new Option<string?>("--s3-endpoint") { Description = "keep the durable copy in S3 (MinIO, AWS) at this URL instead of .storage/remote (first up only)" };
        var bucket = new Option<string?>("--bucket") { Description = "the S3 bucket (default: storage; created if missing)" };
        var accessKey = new Option<string?>("--s3-access-key") { Description = "S3 access key" };
        var secretKey = new Option<string?>("--s3-secret-key") { Description = "S3 secret key" };
        var region = new Option<string?>("--s3-region") { Description = "S3 region (default us-east-1)" };
        var command = new Command("up", "start the local cluster (three safekeepers, the storage controller, two pageservers, the proxy with a pool of 2 VMs) and print the connection string")
            { basePort, httpBasePort, s3Endpoint, bucket, accessKey, secretKey, region };
        command.SetAction((result, ct) => CliRunner.RunAsync(() => RunAsync(CommonOptions.ClusterDir(result),
            result.GetValue(basePort), result.GetValue(httpBasePort),
            result.GetValue(s3Endpoint) is { } endpoint
                ? new ObjectStoreEntry(endpoint, result.GetValue(bucket), result.GetValue(accessKey), result.GetValue(secretKey), result.GetValue(region))
                : null, ct)));
        return command;
    }

    private static async Task<int> RunAsync(ClusterDirectory dir, int basePort, int? httpBasePort, ObjectStoreEntry? objectStore, CancellationToken ct)
    {
        var existing = dir.TryLoad();
        var state = existing ?? ClusterState.New(TimelineIds.New(), TimelineIds.New(), basePort, httpBasePort ?? basePort + 10);
        if (existing is null) state.ObjectStore = objectStore;
        else if (objectStore is not null && objectStore != existing.ObjectStore)
            throw new CliError($"this cluster keeps its data in {(existing.ObjectStore ?? new ObjectStoreEntry(null, null, null, null, null)).Describe(dir.RemoteStorage)}; " +
                "to use another object store, `storagectl down` and delete the cluster folder first");
        await MigrateAsync(state);
        dir.Save(state);

        // Storage first: the control plane's VMs attach against it. The controller before the
        // pageservers, which register with it as they start.
        if (state.Controller is { } controller && !ClusterProcesses.IsRunning(controller)) await StartAllAsync(dir, state, [controller]);
        var storage = state.Safekeepers.Concat<IProcessEntry>(state.Pageservers).Where(p => !ClusterProcesses.IsRunning(p)).ToList();
        if (storage.Count > 0) await StartAllAsync(dir, state, storage);
        await EnsureTimelineAsync(state, ct);

        var proxy = state.RequiredProxy;
        if (!ClusterProcesses.IsRunning(proxy)) await StartAllAsync(dir, state, [proxy]);

        var endpoint = state.Endpoint ?? throw new CliError("cluster.json has no endpoint");
        using var admin = new AdminClient(proxy);
        var view = await admin.FindEndpointAsync(endpoint.Id, ct) ?? await admin.CreateEndpointAsync(new AdminApi.CreateEndpointBody(
            endpoint.Id, state.TenantId, state.TimelineId, endpoint.RoleName, endpoint.Password, null, null), ct);
        if (view.State == "attached") AnsiConsole.MarkupLine($"endpoint [bold]{endpoint.Id}[/] already runs on {view.VmId}");
        else
        {
            await AnsiConsole.Status().StartAsync($"waking endpoint {endpoint.Id} (attaching it to a pooled VM)...", async _ => view = await admin.AttachAsync(endpoint.Id, ct));
            AnsiConsole.MarkupLine($"endpoint [bold]{endpoint.Id}[/] runs on {view.VmId} (PostgreSQL on {view.Host}:{view.Port})");
        }

        // On a line of its own, for people and scripts alike.
        Console.WriteLine(state.ConnectionString);
        return 0;
    }

    /// <summary>
    /// A cluster.json of an older storagectl ran its VM itself: stop that VM (its data directory is
    /// only a cache; the data is on the safekeepers and the pageserver) and give the cluster a proxy.
    /// One without a storage controller gets it and ps2 (ps1 registers its timelines with it).
    /// </summary>
    private static async Task MigrateAsync(ClusterState state)
    {
        if (state.Controller is null)
        {
            int basePort = state.Safekeepers[0].Port, httpBasePort = state.Safekeepers[0].HttpPort;
            foreach (var ps in state.Pageservers.Where(p => p.Pid is int pid && Core.Processes.ServiceProcess.IsAlive(pid)).ToList())
                await ClusterProcesses.StopAsync(ps, TimeSpan.FromSeconds(30)); // restarted below, registering with the controller
            state.Controller = ClusterState.NewController(basePort, httpBasePort);
            if (state.Pageservers.Count < 2) state.Pageservers.Add(ClusterState.NewPageserver(2, basePort, httpBasePort));
            AnsiConsole.MarkupLine("added the storage controller and ps2 (a secondary pageserver) to this cluster");
        }
        if (state.Proxy is not null && state.LegacyComputes is null) return;
        foreach (var vm in state.LegacyComputes ?? [])
        {
            await ClusterProcesses.StopAsync(vm, TimeSpan.FromSeconds(30));
            AnsiConsole.MarkupLine($"stopped {vm.Name}: the control plane runs the compute VMs now");
        }
        state.LegacyComputes = null;
        state.Proxy ??= ClusterState.NewProxy(state.Safekeepers[0].Port);
    }

    /// <summary>Creates the default timeline unless it exists (a first `up`, or one that stopped half way).</summary>
    private static async Task EnsureTimelineAsync(ClusterState state, CancellationToken ct)
    {
        if (await TimelineCommand.ExistsAsync(state, state.TenantId, state.TimelineId, ct)) return;
        await AnsiConsole.Status().StartAsync("creating the default timeline (initdb on the pageserver the controller picks)...", async _ =>
        {
            var info = await TimelineCommand.CreateOnPageserverAsync(state, state.TenantId, state.TimelineId, ct);
            AnsiConsole.MarkupLine($"created timeline tenant [bold]{state.TenantId}[/] timeline [bold]{state.TimelineId}[/], WAL from {new Core.Lsn(info.StartLsn)}");
        });
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

    public static string Describe(IProcessEntry p) => p switch
    {
        SafekeeperEntry sk => $"{sk.Name} ({sk.AvailabilityZone}) pid {sk.Pid} on 127.0.0.1:{sk.Port}, metrics on :{sk.HttpPort}",
        PageserverEntry ps => $"{ps.Name} (pageserver) pid {ps.Pid} on 127.0.0.1:{ps.Port}, metrics on :{ps.HttpPort}",
        ControllerEntry c => $"controller (storage controller) pid {c.Pid} on 127.0.0.1:{c.Port}, metrics on :{c.HttpPort}",
        ProxyEntry proxy => $"proxy pid {proxy.Pid}: PostgreSQL on 127.0.0.1:{proxy.Port}, control plane admin API on :{proxy.AdminPort}, pool of {proxy.PoolSize} VMs",
        _ => p.Name,
    };
}
