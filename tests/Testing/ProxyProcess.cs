using Storage.Core.Postgres;
using Storage.Core.Processes;

namespace Storage.Testing;

/// <summary>
/// The compute proxy process (proxy + control plane + a VM pool) in front of a <see cref="ComputeCluster"/>'s
/// safekeepers and pageserver, with the default endpoint main. Disposing it stops its VMs too.
/// </summary>
public sealed class ProxyProcess(string dataDir, ComputeCluster cluster, int poolSize = 2) : IAsyncDisposable
{
    private ServiceProcess? _process;
    private int _adminPort = ServiceProcess.FreePort();
    private bool _started; // a restart keeps the ports clients know
    public int PgPort { get; private set; } = ServiceProcess.FreePort();
    public Uri Admin => new($"http://127.0.0.1:{_adminPort}");

    /// <summary>A client of the admin API, with the admin token it requires.</summary>
    public HttpClient AdminHttp()
    {
        var http = new HttpClient { BaseAddress = Admin };
        http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", TestAuth.AdminToken);
        return http;
    }
    public string DataDirectory => dataDir;
    public string Log => dataDir + ".log";
    /// <summary>The proxy process's PID (0 when not running).</summary>
    public int Pid => _process?.Pid ?? 0;

    /// <summary>A connection string through the proxy as the cluster's role (default endpoint: main).</summary>
    public string ConnectionString(int timeoutSeconds = 60) =>
        $"Host=127.0.0.1;Port={PgPort};Username={ComputeCluster.Role};Password={cluster.Password};Database=postgres;Pooling=false;Timeout={timeoutSeconds};Command Timeout={timeoutSeconds}";

    /// <summary>The PID of the PostgreSQL postmaster on a VM of the pool.</summary>
    public int PostmasterPid(string vmId) => PostmasterRecord.ReadFrom(Path.Combine(dataDir, "vms", vmId))?.Pid
        ?? throw new InvalidOperationException($"VM {vmId} runs no PostgreSQL");

    public async Task StartAsync()
    {
        Task<ServiceProcess> Start() => ServiceProcess.StartAsync(ProxyCommand.Assembly,
            ProxyCommand.Arguments(PgPort, _adminPort, dataDir, cluster.Safekeepers.Uris, [cluster.Pageserver.Uri], poolSize,
                extra: ["--default-endpoint", "main", "--heartbeat-ms", "300", .. TestAuth.Secrets.ControlPlaneArguments()]), Log, readyTimeout: TimeSpan.FromSeconds(120));
        _process = _started ? await Start() : await PortRace.StartAsync(Start, () => (PgPort, _adminPort) = (ServiceProcess.FreePort(), ServiceProcess.FreePort()));
        _started = true;
    }

    public async Task KillAsync()
    {
        _process!.Kill();
        await _process.DisposeAsync();
        _process = null;
    }

    public async ValueTask DisposeAsync()
    {
        if (_process is null) return;
        await ServiceProcess.StopPidAsync(_process.Pid, TimeSpan.FromSeconds(60)); // stops its VMs too
        await _process.DisposeAsync();
        _process = null;
    }

    /// <summary>The last lines of the proxy's log, for failure reports.</summary>
    public string LogTail(int lines = 60) => File.Exists(Log) ? string.Join("\n", File.ReadLines(Log).TakeLast(lines)) : "";
}
