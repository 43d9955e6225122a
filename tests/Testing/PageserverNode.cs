using Storage.Core.Auth;
using Storage.Core;
using Storage.Core.Api;
using Storage.Core.Processes;
using Storage.Proto.Pageserver;

namespace Storage.Testing;

/// <summary>
/// One pageserver process with its data directory and a local-folder object store, on free ports
/// in <paramref name="root"/>; it can be killed, have its disk wiped, and be started again.
/// </summary>
public sealed class PageserverNode(string root, IReadOnlyList<Uri> safekeepers, IReadOnlyList<string>? extraArguments = null, string name = "ps1") : IAsyncDisposable
{
    private ServiceProcess? _process;
    private int _grpcPort, _httpPort;

    public string Name => name;
    public string DataDirectory { get; } = Path.Combine(root, name);
    public string RemoteStorage { get; } = Path.Combine(root, "remote");
    public string LogFile => Path.Combine(root, name + ".log");
    public Uri Uri => new($"http://127.0.0.1:{_grpcPort}");
    public Uri HttpUri => new($"http://127.0.0.1:{_httpPort}");
    public int? Pid => _process?.Pid;

    /// <summary>Pageserver options for an image after every MB of WAL or second, so tests see several.</summary>
    public static readonly string[] FrequentImages = ["--image-after-mb", "1", "--image-after-seconds", "1"];

    public static async Task<PageserverNode> StartAsync(string root, IReadOnlyList<Uri> safekeepers, IReadOnlyList<string>? extraArguments = null, string name = "ps1")
    {
        var node = new PageserverNode(root, safekeepers, extraArguments, name);
        await node.StartAsync();
        return node;
    }

    public async Task StartAsync()
    {
        bool first = _grpcPort == 0;
        if (first) (_grpcPort, _httpPort) = (ServiceProcess.FreePort(), ServiceProcess.FreePort());
        var extra = new List<string>();
        // The local folder, unless the arguments name an S3 endpoint instead.
        if (extraArguments?.Contains("--s3-endpoint") != true) extra.AddRange(["--remote-storage", RemoteStorage]);
        if (extraArguments is not null) extra.AddRange(extraArguments);
        Task<ServiceProcess> Start() => ServiceProcess.StartAsync(PageserverCommand.Assembly, [.. PageserverCommand.Arguments(new PageserverOptions
        {
            Id = name,
            Service = ServiceListenOptions.OnLoopback(_grpcPort, _httpPort),
            DataDir = DataDirectory,
            Safekeepers = safekeepers,
            Auth = TestAuth.Secrets.ServiceAuth(Scope.Pageserver, name),
        }), .. extra], LogFile, readyTimeout: TimeSpan.FromSeconds(120));
        _process = first
            ? await PortRace.StartAsync(Start, () => (_grpcPort, _httpPort) = (ServiceProcess.FreePort(), ServiceProcess.FreePort()))
            : await Start();
    }

    /// <summary>
    /// SIGKILL. Its replay PostgreSQL instances outlive it (a postmaster does not follow its parent);
    /// they are killed too, by the PIDs in their postmaster.pid, as a crashed machine would lose them.
    /// </summary>
    /// <summary>SIGSTOP: the process hangs (a pageserver cut off from the network) but holds on to everything.</summary>
    public void Freeze() => Storage.Core.Postgres.OsUser.Signal(_process!.Pid, Storage.Core.Postgres.OsUser.SigStop);

    public void Thaw() => Storage.Core.Postgres.OsUser.Signal(_process!.Pid, Storage.Core.Postgres.OsUser.SigCont);

    public async Task KillAsync()
    {
        if (_process is null) return;
        _process.Kill();
        await _process.DisposeAsync();
        _process = null;
        KillReplayInstances();
    }

    private void KillReplayInstances()
    {
        if (!Directory.Exists(DataDirectory)) return;
        foreach (var pidFile in Directory.EnumerateFiles(DataDirectory, "postmaster.pid", SearchOption.AllDirectories))
            Storage.Core.Postgres.PostgresServer.KillLeftoverPostmaster(Path.GetDirectoryName(pidFile)!);
    }

    /// <summary>Deletes the pageserver's whole disk (it must be stopped).</summary>
    public void WipeDisk()
    {
        if (_process is not null) throw new InvalidOperationException("stop the pageserver first");
        Eventually.DeleteDirectory(DataDirectory); // its replay PostgreSQL may outlive it briefly
    }

    public Task<TimelineInfo> CreateTimelineAsync(string tenantId, string timelineId, string? ancestor = null, Lsn ancestorLsn = default, DateTimeOffset? ancestorTime = null)
    {
        var request = new CreateTimelineRequest { Timeline = PageserverClient.Id(tenantId, timelineId), AncestorTimelineId = ancestor ?? "", AncestorLsn = ancestorLsn.Value };
        if (ancestorTime is { } t) request.AncestorTimestampMicros = (t - DateTimeOffset.UnixEpoch).Ticks / 10;
        request.Safekeepers.AddRange(safekeepers.Select(s => s.ToString()));
        return PageserverClient.CreateTimelineAsync(Uri, request);
    }

    public Task<TimelineInfo> TimelineAsync(string tenantId, string timelineId) => PageserverClient.GetTimelineAsync(Uri, tenantId, timelineId);

    /// <summary>Waits until the pageserver has ingested up to <paramref name="lsn"/>.</summary>
    public Task<TimelineInfo> WaitForIngestAsync(string tenantId, string timelineId, Lsn lsn, TimeSpan timeout) =>
        Eventually.ReachAsync(() => TimelineAsync(tenantId, timelineId), info => info.IngestedLsn >= lsn.Value, timeout, Logs);

    public string Logs() => File.Exists(LogFile) ? string.Join("\n", File.ReadLines(LogFile).TakeLast(60)) : "";

    public async ValueTask DisposeAsync()
    {
        if (_process is null) return;
        await ServiceProcess.StopPidAsync(_process.Pid, TimeSpan.FromSeconds(30));
        await _process.DisposeAsync();
        _process = null;
        KillReplayInstances(); // if the stop had to SIGKILL it
    }
}
