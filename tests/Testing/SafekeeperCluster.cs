using Storage.Core;
using Storage.Core.Api;
using Storage.Core.Processes;
using Storage.Proposer;
using Storage.Proto.Safekeeper;

namespace Storage.Testing;

/// <summary>
/// Three real safekeeper processes (az-a, az-b, az-c) on free loopback ports with their own temp
/// data dirs, and one timeline created on each. Processes are killed by their PIDs on dispose.
/// </summary>
public sealed class SafekeeperCluster : IAsyncDisposable
{
    public static readonly Lsn TimelineStart = new(0x0100_0000); // 0/1000000, a segment start

    private readonly ServiceProcess?[] _processes = new ServiceProcess?[3];
    private readonly int[] _ports = Enumerable.Range(0, 3).Select(_ => ServiceProcess.FreePort()).ToArray();
    private readonly int[] _httpPorts = Enumerable.Range(0, 3).Select(_ => ServiceProcess.FreePort()).ToArray();
    private readonly int[] _pgPorts = Enumerable.Range(0, 3).Select(_ => ServiceProcess.FreePort()).ToArray();
    private readonly bool[] _started = new bool[3]; // a restart keeps the ports the proposers know

    public string Root { get; } = Directory.CreateTempSubdirectory("sk-cluster-").FullName;
    public string TenantId { get; } = TimelineIds.New();
    public string TimelineId { get; } = TimelineIds.New();
    public TimelineKey Key => new() { TenantId = TenantId, TimelineId = TimelineId };
    public IReadOnlyList<Uri> Uris => _ports.Select(p => new Uri($"http://127.0.0.1:{p}")).ToArray();
    public string DataDir(int i) => Path.Combine(Root, $"sk{i + 1}");
    public string TimelineDir(int i) => Path.Combine(DataDir(i), TenantId, TimelineId);
    public Uri MetricsUri(int i) => new($"http://127.0.0.1:{_httpPorts[i]}/metrics");

    /// <summary>Extra command-line options for every safekeeper (kept for restarts).</summary>
    private IReadOnlyList<string> _extraArguments = [];

    /// <summary>True when the safekeepers serve the replication protocol (<see cref="PgPort"/>), checking tokens of <see cref="Tokens"/>.</summary>
    public bool Replication { get; private init; }
    /// <summary>The replication-protocol port of safekeeper <paramref name="i"/> (with <see cref="Replication"/>).</summary>
    public int PgPort(int i) => _pgPorts[i];
    /// <summary>Mints tokens the safekeepers accept (with <see cref="Replication"/>).</summary>
    public Core.Auth.TokenIssuer Tokens => TestAuth.Secrets.Issuer();
    /// <summary>A compute token of this cluster's tenant.</summary>
    public string ComputeToken() => Tokens.Issue(Core.Auth.Scope.Compute, "test", TimeSpan.FromHours(1), TenantId);
    /// <summary>The replication connection's options naming this cluster's timeline.</summary>
    public string ReplicationOptions => $"-c tenant_id={TenantId} -c timeline_id={TimelineId}";

    /// <summary>
    /// A fresh process's first call fsyncs a control file and directories: with the suite's test
    /// assemblies beside it (load average 20 on two cores) that has taken more than 10 s.
    /// </summary>
    public static readonly TimeSpan CreateTimeout = TimeSpan.FromSeconds(60);

    /// <param name="replication">Serve PostgreSQL's replication protocol on a port of each (<see cref="PgPort"/>), with tokens of <see cref="Tokens"/>.</param>
    public static async Task<SafekeeperCluster> StartAsync(bool createTimeline = true, IReadOnlyList<string>? extraArguments = null, bool replication = false)
    {
        var cluster = new SafekeeperCluster { _extraArguments = extraArguments ?? [], Replication = replication };
        try
        {
            await Task.WhenAll(Enumerable.Range(0, 3).Select(cluster.StartAsync));
            if (createTimeline)
                for (int i = 0; i < 3; i++)
                    await SafekeeperClient.CreateTimelineAsync(cluster.Uris[i], cluster.Key, TimelineStart, timeout: CreateTimeout);
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    public async Task StartAsync(int i)
    {
        Task<ServiceProcess> Start() => ServiceProcess.StartAsync(SafekeeperCommand.Assembly,
            SafekeeperCommand.Arguments((ulong)i + 1, _ports[i], _httpPorts[i], DataDir(i), $"az-{(char)('a' + i)}",
                extra: [.. TestAuth.VerifierArguments, .. _extraArguments, .. Replication ? ["--pg-listen", $"127.0.0.1:{_pgPorts[i]}"] : Array.Empty<string>()]),
            LogFile(i), readyTimeout: TimeSpan.FromSeconds(60));
        _processes[i] = _started[i]
            ? await Start()
            : await PortRace.StartAsync(Start, () => (_ports[i], _httpPorts[i], _pgPorts[i]) = (ServiceProcess.FreePort(), ServiceProcess.FreePort(), ServiceProcess.FreePort()));
        _started[i] = true;
    }

    /// <summary>The PID of safekeeper <paramref name="i"/> (null when it is not running).</summary>
    public int? Pid(int i) => _processes[i]?.Pid;

    public void Kill(int i)
    {
        _processes[i]?.Kill();
        _processes[i] = null;
    }

    /// <summary>The generated client of safekeeper <paramref name="i"/> (calls should pass a deadline: <see cref="Deadline"/>).</summary>
    public Proto.Safekeeper.Safekeeper.SafekeeperClient Client(int i) => SafekeeperClient.For(Uris[i]);

    /// <summary>A deadline 10 s from now: bounded calls in tests.</summary>
    public static DateTime Deadline() => DateTime.UtcNow.AddSeconds(10);

    /// <summary>The timeline's status on safekeeper <paramref name="i"/>; waits (bounded) for one that is starting to listen.</summary>
    public async Task<TimelineStatus> StatusAsync(int i) =>
        await Client(i).GetTimelineStatusAsync(new TimelineStatusRequest { Timeline = Key }, new Grpc.Core.CallOptions(deadline: Deadline()).WithWaitForReady());

    public WalProposer NewProposer(ulong minimumTerm = 0) =>
        new(new WalProposerOptions { TenantId = TenantId, TimelineId = TimelineId, Safekeepers = Uris, MinimumTerm = minimumTerm }, Core.Observability.Logging.CreateFactory("text", Microsoft.Extensions.Logging.LogLevel.Debug).CreateLogger("proposer"));

    public string LogFile(int i) => Path.Combine(Root, $"sk{i + 1}.log");

    public string Logs() => string.Join("\n", Enumerable.Range(0, 3).Select(i =>
    {
        var path = LogFile(i);
        return File.Exists(path) ? $"--- sk{i + 1}\n" + string.Join("\n", File.ReadLines(path).TakeLast(30)) : "";
    }));

    public async ValueTask DisposeAsync()
    {
        foreach (var p in _processes) if (p is not null) p.Kill();
        foreach (var p in _processes) if (p is not null) await p.DisposeAsync();

        try { Directory.Delete(Root, recursive: true); } catch (IOException) { }
    }
}
