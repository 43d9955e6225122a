using Storage.Core.Auth;
using Storage.Core.Api;
using Storage.Core.Processes;
using Storage.Proto.Controller;

namespace Storage.Testing;

/// <summary>A storage controller process on free ports, its state in <c>root/controller</c>; it can be killed and started again.</summary>
public sealed class ControllerNode(string root) : IAsyncDisposable
{
    private ServiceProcess? _process;
    private int _grpcPort, _httpPort;

    public string DataDirectory { get; } = Path.Combine(root, "controller");
    public string LogFile => Path.Combine(root, "controller.log");
    public Uri Uri => new($"http://127.0.0.1:{_grpcPort}");
    public Uri HttpUri => new($"http://127.0.0.1:{_httpPort}");

    public static async Task<ControllerNode> StartAsync(string root)
    {
        var node = new ControllerNode(root);
        await node.StartAsync();
        return node;
    }

    /// <summary>Heartbeats every 200 ms, failover after 1.5 s without an answer: quick tests.</summary>
    public async Task StartAsync()
    {
        bool first = _grpcPort == 0;
        if (first) (_grpcPort, _httpPort) = (ServiceProcess.FreePort(), ServiceProcess.FreePort());
        Task<ServiceProcess> Start() => ServiceProcess.StartAsync(ControllerCommand.Assembly, ControllerCommand.Arguments(new ControllerOptions
        {
            Service = ServiceListenOptions.OnLoopback(_grpcPort, _httpPort),
            DataDir = DataDirectory,
            HeartbeatMs = 200,
            FailureTimeoutMs = 1500,
            Auth = TestAuth.Secrets.ServiceAuth(Scope.Controller, "controller"),
        }), LogFile, readyTimeout: TimeSpan.FromSeconds(120));
        _process = first
            ? await PortRace.StartAsync(Start, () => (_grpcPort, _httpPort) = (ServiceProcess.FreePort(), ServiceProcess.FreePort()))
            : await Start();
    }

    public async Task KillAsync()
    {
        if (_process is null) return;
        _process.Kill();
        await _process.DisposeAsync();
        _process = null;
    }

    public Task<ControllerStatusResponse> StatusAsync() => ControllerClient.StatusAsync(Uri);

    /// <summary>Waits until the timeline's placement satisfies <paramref name="condition"/>; returns it.</summary>
    public Task<TimelinePlacement> WaitForPlacementAsync(string tenantId, string timelineId, Func<TimelinePlacement, bool> condition, TimeSpan timeout) =>
        Eventually.ReachAsync(() => ControllerClient.GetPlacementAsync(Uri, tenantId, timelineId), condition, timeout, Logs);

    public string Logs() => File.Exists(LogFile) ? string.Join("\n", File.ReadLines(LogFile).TakeLast(40)) : "";

    public async ValueTask DisposeAsync()
    {
        if (_process is null) return;
        await ServiceProcess.StopPidAsync(_process.Pid, TimeSpan.FromSeconds(10));
        await _process.DisposeAsync();
        _process = null;
    }
}
