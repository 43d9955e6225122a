using Grpc.Core;
using Storage.Core.Api;
using Storage.Core.Postgres;
using Storage.Core.Processes;
using Storage.Proto.Compute;

namespace Storage.Testing;

/// <summary>One compute agent process (a pooled VM) of a <see cref="ComputeCluster"/>.</summary>
public sealed class ComputeVm(string name, int grpcPort, int httpPort, int postgresPort, string workDirectory, ServiceProcess process) : IAsyncDisposable
{
    /// <summary>The agent's HTTP address (/metrics).</summary>
    public Uri HttpUri { get; } = new($"http://127.0.0.1:{httpPort}");
    public string Name { get; } = name;
    public int PostgresPort { get; } = postgresPort;
    public string WorkDirectory { get; } = workDirectory;
    /// <summary>The running PostgreSQL's pg_wal (its data directory is named in postmaster.pid's line 2).</summary>
    public string PgWalDirectory => Path.Combine(Postmaster.DataDirectory, "pg_wal");

    /// <summary>The running PostgreSQL as its agent recorded it.</summary>
    public PostmasterRecord Postmaster => PostmasterRecord.ReadFrom(WorkDirectory) ?? throw new InvalidOperationException($"{Name} runs no PostgreSQL");
    public Uri Uri { get; } = new($"http://127.0.0.1:{grpcPort}");
    public ServiceProcess Process { get; } = process;

    public Task<ComputeStatus> StatusAsync() => ComputeClient.StatusAsync(Uri);
    public Task<HeartbeatResponse> HeartbeatAsync() => ComputeClient.HeartbeatAsync(Uri);
    public Task<ComputeStatus> AttachAsync(AttachRequest request) => ComputeClient.AttachAsync(Uri, request, TimeSpan.FromMinutes(3));
    public Task<ComputeStatus> DetachAsync() => ComputeClient.DetachAsync(Uri, TimeSpan.FromMinutes(1));
    public Task<PreparedImage> PrepareAsync(PrepareRequest request) => ComputeClient.PrepareAsync(Uri, request, TimeSpan.FromMinutes(2));

    public ValueTask DisposeAsync() => Process.DisposeAsync();
}

/// <summary>
/// Three safekeepers, one timeline created from an initdb image, and compute agent processes,
/// all real processes on free ports in a temp dir; everything is killed by PID on dispose.
/// </summary>
public sealed class ComputeCluster : IAsyncDisposable
{
    private readonly List<ComputeVm> _vms = new();
    private readonly List<PageserverNode> _pageservers = new();

    private ComputeCluster(string root, SafekeeperCluster safekeepers)
    {
        Root = root;
        Safekeepers = safekeepers;
    }

    public SafekeeperCluster Safekeepers { get; }
    public string Root { get; }
    /// <summary>The object store (a local folder) the safekeepers offload to and the pageserver uploads to.</summary>
    public string RemoteStorage => Path.Combine(Root, "remote");
    public PageserverNode Pageserver { get; private set; } = null!;
    /// <summary>Every pageserver: ps1 alone, or ps1 and ps2 placed by <see cref="Controller"/>.</summary>
    public IReadOnlyList<PageserverNode> Pageservers => _pageservers;
    public ControllerNode? Controller { get; private set; }
    /// <summary>The timeline as the pageserver created it (start LSN = end of initdb's WAL).</summary>
    public Proto.Pageserver.TimelineInfo Timeline { get; private set; } = null!;
    public string TenantId => Safekeepers.TenantId;
    public string TimelineId => Safekeepers.TimelineId;
    public IReadOnlyList<ComputeVm> Vms => _vms;
    public const string Role = "app";
    public string Password { get; } = "pw-" + Guid.NewGuid().ToString("N")[..12];

    /// <param name="pageserverArguments">Extra pageserver options, e.g. image thresholds.</param>
    /// <param name="safekeeperOffload">False: safekeepers neither offload nor, therefore, trim WAL (for tests that read it all back).</param>
    /// <param name="withController">Two pageservers (ps1 attached, ps2 secondary) placed by a storage controller.</param>
    /// <param name="safekeeperReplication">The safekeepers serve PostgreSQL's replication protocol (<see cref="SafekeeperCluster.PgPort"/>).</param>
    public static async Task<ComputeCluster> StartAsync(int vms = 1, IReadOnlyList<string>? pageserverArguments = null, bool safekeeperOffload = true,
        bool withController = false, bool safekeeperReplication = false)
    {
        var root = Directory.CreateTempSubdirectory("compute-cluster-").FullName;
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(root, (UnixFileMode)0b111_101_101); // postgres reaches VM dirs
        var cluster = new ComputeCluster(root, await SafekeeperCluster.StartAsync(createTimeline: false,
            extraArguments: safekeeperOffload ? ["--remote-storage", Path.Combine(root, "remote"), "--offload-interval-ms", "200", "--trim-interval-ms", "200"] : null,
            replication: safekeeperReplication));
        try
        {
            if (withController)
            {
                cluster.Controller = await ControllerNode.StartAsync(cluster.Root);
                List<string> arguments = [.. pageserverArguments ?? [], "--controller", cluster.Controller.Uri.ToString(), "--secondary-refresh-ms", "500"];
                foreach (var name in new[] { "ps1", "ps2" })
                    cluster._pageservers.Add(await PageserverNode.StartAsync(cluster.Root, cluster.Safekeepers.Uris, arguments, name));
                cluster.Pageserver = cluster._pageservers[0];
                var request = new Proto.Pageserver.CreateTimelineRequest { Timeline = PageserverClient.Id(cluster.TenantId, cluster.TimelineId) };
                request.Safekeepers.AddRange(cluster.Safekeepers.Uris.Select(u => u.ToString()));
                var placement = await ControllerClient.CreateTimelineAsync(cluster.Controller.Uri, request);
                if (placement.AttachedNode != "ps1") throw new InvalidOperationException($"expected the timeline on ps1, the controller placed it {placement}");
                cluster.Timeline = await cluster.Pageserver.TimelineAsync(cluster.TenantId, cluster.TimelineId);
            }
            else
            {
                cluster.Pageserver = await PageserverNode.StartAsync(cluster.Root, cluster.Safekeepers.Uris, pageserverArguments);
                cluster._pageservers.Add(cluster.Pageserver);
                cluster.Timeline = await cluster.Pageserver.CreateTimelineAsync(cluster.TenantId, cluster.TimelineId);
            }
            for (int i = 0; i < vms; i++) await cluster.StartVmAsync();
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    /// <param name="workDirectory">Where the VM keeps its things (default: under <see cref="Root"/>).</param>
    /// <param name="arguments">Extra agent options.</param>
    public async Task<ComputeVm> StartVmAsync(string? workDirectory = null, IReadOnlyList<string>? arguments = null)
    {
        var name = $"vm{_vms.Count + 1}";
        int grpc = ServiceProcess.FreePort(), http = ServiceProcess.FreePort(), pg = ServiceProcess.FreePort();
        var work = workDirectory ?? Path.Combine(Root, name);
        var process = await PortRace.StartAsync(
            () => ServiceProcess.StartAsync(ComputeCommand.Assembly, ComputeCommand.Arguments(name, grpc, http, work, pg, extra: [.. TestAuth.VerifierArguments, .. arguments ?? []]),
                Path.Combine(Root, name + ".log"), readyTimeout: TimeSpan.FromSeconds(60)),
            () => (grpc, http) = (ServiceProcess.FreePort(), ServiceProcess.FreePort()));
        var vm = new ComputeVm(name, grpc, http, pg, work, process);
        _vms.Add(vm);
        return vm;
    }

    public AttachRequest NewAttachRequest(ulong minimumTerm = 0, string? timelineId = null)
    {
        var request = new AttachRequest
        {
            TenantId = TenantId,
            TimelineId = timelineId ?? TimelineId,
            Endpoint = new EndpointSettings { EndpointId = "main", RoleName = Role, RolePassword = Password },
            MinimumTerm = minimumTerm,
            Token = TestAuth.ComputeTokens.For(TenantId),
        };
        request.Safekeepers.AddRange(Safekeepers.Uris.Select(u => u.ToString()));
        request.Pageservers.AddRange(_pageservers.Select(p => p.Uri.ToString())); // the compute skips one that is down or only secondary
        // Small and quick: tests run many computes on 2 cores.
        request.Endpoint.PostgresSettings.Add("shared_buffers", "32MB");
        return request;
    }

    /// <summary>A prepare of the default timeline on this cluster's pageservers.</summary>
    public PrepareRequest NewPrepareRequest()
    {
        var request = new PrepareRequest { TenantId = TenantId, TimelineId = TimelineId, Token = TestAuth.ComputeTokens.For(TenantId) };
        request.Pageservers.AddRange(_pageservers.Select(p => p.Uri.ToString()));
        return request;
    }

    /// <summary>Attaches <paramref name="vm"/> (to the default timeline unless the request says); failures carry every log.</summary>
    public async Task<ComputeStatus> AttachOrThrowAsync(ComputeVm vm, AttachRequest? request = null)
    {
        try
        {
            var status = await vm.AttachAsync(request ?? NewAttachRequest());
            return status.State == ComputeState.Running ? status : throw new InvalidOperationException($"attach left {vm.Name} in state {status.State}\n{Logs()}");
        }
        catch (RpcException e) { throw new InvalidOperationException($"attach of {vm.Name} failed: {e.Message}\n{Logs()}", e); }
    }

    public string Logs() => Safekeepers.Logs() + string.Concat(_pageservers.Select(p => $"\n--- {p.Name}\n" + p.Logs()))
        + (Controller is null ? "" : "\n--- controller\n" + Controller.Logs()) + "\n" + string.Join("\n", _vms.Select(vm =>
    {
        var agent = Path.Combine(Root, vm.Name + ".log");
        var pg = Path.Combine(vm.WorkDirectory, "postgres.log");
        return $"--- {vm.Name}\n" + (File.Exists(agent) ? string.Join("\n", File.ReadLines(agent).TakeLast(40)) : "")
            + $"\n--- {vm.Name} postgres\n" + (File.Exists(pg) ? string.Join("\n", File.ReadLines(pg).TakeLast(20)) : "");
    }));

    public async ValueTask DisposeAsync()
    {
        // SIGTERM first so each agent stops its own PostgreSQL; the ServiceProcess then kills by PID.
        await Task.WhenAll(_vms.Select(vm => ServiceProcess.StopPidAsync(vm.Process.Pid, TimeSpan.FromSeconds(20))));
        foreach (var vm in _vms) await vm.DisposeAsync();
        foreach (var pageserver in _pageservers) await pageserver.DisposeAsync();
        if (Controller is not null) await Controller.DisposeAsync();
        await Safekeepers.DisposeAsync();
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
