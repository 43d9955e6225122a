using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Storage.Core.Observability;

namespace Storage.ComputeProxy.ControlPlane;

/// <summary>
/// The control plane: endpoint registry, VM pool, heartbeats with reattach, scale to zero, the
/// admin API, and the <see cref="IComputeLocator"/> the proxy uses. Start adopts what a previous
/// run left (registry and running VMs) and fills the pool; Stop stops every VM.
/// </summary>
public sealed class ControlPlane : IAsyncDisposable
{
    private readonly ControlPlaneOptions _options;
    private readonly ILoggerFactory _loggers;
    private readonly ILogger _log;
    private readonly HeartbeatMonitor _monitor;
    private readonly IdleSuspender _suspender;
    private readonly Reattacher _reattacher;
    private readonly SparePreparer _preparer;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _loops = new();
    private AdminApi? _admin;
    private bool _stopped;

    public ControlPlane(ControlPlaneOptions options, ILoggerFactory? loggers = null, MetricsRegistry? metrics = null)
    {
        options.Validate();
        _options = options;
        _loggers = loggers ?? NullLoggerFactory.Instance;
        _log = _loggers.CreateLogger("Storage.ControlPlane");
        Directory.CreateDirectory(options.DataDirectory);
        var store = new StateStore(Path.Combine(options.DataDirectory, "state.bin"));
        Metrics = new ControlPlaneMetrics(metrics ?? new MetricsRegistry());
        Endpoints = new EndpointRegistry(store, options.DefaultSuspendTimeout);
        Pool = new VmPool(options, store, Metrics, _loggers.CreateLogger("Storage.ControlPlane.VmPool"));
        Sessions = new SessionTracker(TimeProvider.System);
        var pageservers = new PageserverRoute(options, _log);
        Attacher = new EndpointAttacher(options, Endpoints, Pool, Sessions, pageservers, Metrics, _log);
        _preparer = new SparePreparer(options, Endpoints, Pool, pageservers, Metrics, _log);
        _reattacher = new Reattacher(Pool, Endpoints, Attacher, Metrics, _log);
        _monitor = new HeartbeatMonitor(options, Pool, _reattacher, Metrics, _log);
        _suspender = new IdleSuspender(options, Endpoints, Sessions, Attacher, Metrics, _log);
        Locator = new ComputeLocator(Attacher, Pool, _monitor, Sessions, _log);
        Metrics.Observe(Pool, Endpoints);
    }

    public EndpointRegistry Endpoints { get; }
    public VmPool Pool { get; }
    public SessionTracker Sessions { get; }
    public EndpointAttacher Attacher { get; }
    public ControlPlaneMetrics Metrics { get; }
    public IComputeLocator Locator { get; }
    /// <summary>The admin API's base address once started (null when not configured).</summary>
    public Uri? AdminUri => _admin?.Address;

    public async Task StartAsync(CancellationToken ct = default)
    {
        await Pool.RecoverAsync(vmId => Endpoints.List().FirstOrDefault(e => e.VmId == vmId)?.Id, ct);
        await Pool.RefillAsync(ct);
        // Endpoints whose VM did not survive the restart are reattached at once, as after any VM death.
        foreach (var endpoint in Endpoints.List().Where(e => e.VmId is not null && Attacher.CurrentAddress(e.Id) is null))
        {
            Endpoints.SetVm(endpoint.Id, null);
            _reattacher.Reattach(endpoint.Id);
        }
        _loops.Add(Task.Run(() => _monitor.RunAsync(_stop.Token)));
        _loops.Add(Task.Run(() => _suspender.RunAsync(_stop.Token)));
        _loops.Add(Task.Run(() => _preparer.RunAsync(_stop.Token)));
        if (_options.AdminEndpoint is { } admin)
        {
            _admin = new AdminApi(this, _loggers);
            await _admin.StartAsync(admin, ct);
        }
        _log.LogInformation("control plane started: {Vms} VMs, {Endpoints} endpoints, admin API {Admin}", Pool.Snapshot().Count, Endpoints.List().Count, AdminUri);
    }

    /// <summary>Stops the loops and the admin API, then every VM (each stops its PostgreSQL cleanly).</summary>
    public async Task StopAsync()
    {
        if (!await StopServingAsync()) return;
        await Pool.StopAllAsync(TimeSpan.FromSeconds(20));
    }

    /// <summary>
    /// Stops the control plane but leaves its VMs running, as a crash of its process would; a new
    /// control plane on the same data directory adopts them.
    /// </summary>
    public async Task AbandonAsync()
    {
        if (await StopServingAsync()) Pool.Abandon();
    }

    private async Task<bool> StopServingAsync()
    {
        if (_stopped) return false;
        _stopped = true;
        _stop.Cancel();
        Attacher.Stop();
        if (_admin is not null) await _admin.DisposeAsync();
        await Task.WhenAll(_loops);
        return true;
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        Attacher.Dispose();
        await Pool.DisposeAsync();
        _stop.Dispose();
    }
}
