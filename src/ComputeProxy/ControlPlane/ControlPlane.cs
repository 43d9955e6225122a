using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Prometheus;

namespace Storage.ComputeProxy.ControlPlane;

/// <summary>
/// The control plane: endpoint registry, VM pool, heartbeats with reattach, scale to zero, and the
/// <see cref="IComputeLocator"/> the proxy uses (the admin API is <see cref="AdminApi"/> on the
/// host's HTTP endpoint). A hosted service: start adopts what a previous run left (registry and
/// running VMs), fills the pool and starts its loops (heartbeats, suspension, spare preparation,
/// each a <see cref="BackgroundService"/> it owns); stop ends the loops, then every VM.
/// </summary>
public sealed class ControlPlane : IHostedService, IAsyncDisposable
{
    private readonly ILogger _log;
    private readonly Reattacher _reattacher;
    private readonly IReadOnlyList<BackgroundService> _loops;
    private bool _started, _stopped;

    /// <param name="registry">Where its metrics go (the process's /metrics, shared with the proxy); null: a registry of its own.</param>
    public ControlPlane(ControlPlaneOptions options, ILoggerFactory? loggers = null, CollectorRegistry? registry = null, TimeProvider? time = null)
    {
        options.Validate();
        loggers ??= NullLoggerFactory.Instance;
        time ??= TimeProvider.System;
        _log = loggers.CreateLogger("Storage.ControlPlane");
        Directory.CreateDirectory(options.DataDirectory);
        var store = new StateStore(Path.Combine(options.DataDirectory, "state.bin"));
        Metrics = new ControlPlaneMetrics(registry);
        Endpoints = new EndpointRegistry(store, options.DefaultSuspendTimeout);
        Pool = new VmPool(options, store, Metrics, loggers.CreateLogger("Storage.ControlPlane.VmPool"));
        Sessions = new SessionTracker(time);
        var pageservers = new PageserverRoute(options, _log);
        Attacher = new EndpointAttacher(options, Endpoints, Pool, Sessions, pageservers, Metrics, _log);
        _reattacher = new Reattacher(Pool, Endpoints, Attacher, Metrics, _log);
        var monitor = new HeartbeatMonitor(options, Pool, new AgentProbe(Pool), _reattacher, Metrics, _log, time);
        _loops =
        [
            monitor,
            new IdleSuspender(options, Endpoints, Sessions, Attacher, Metrics, _log, time),
            new SparePreparer(options, Endpoints, Pool, pageservers, Metrics, _log, time),
        ];
        Locator = new ComputeLocator(Attacher, Pool, monitor, Sessions, _log);
        Metrics.Observe(Pool, Endpoints);
    }

    public EndpointRegistry Endpoints { get; }
    public VmPool Pool { get; }
    public SessionTracker Sessions { get; }
    public EndpointAttacher Attacher { get; }
    public ControlPlaneMetrics Metrics { get; }
    public IComputeLocator Locator { get; }

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
        foreach (var loop in _loops) await loop.StartAsync(ct);
        _started = true;
        _log.LogInformation("control plane started: {Vms} VMs, {Endpoints} endpoints", Pool.Snapshot().Count, Endpoints.List().Count);
    }

    /// <summary>Stops the loops, then every VM (each stops its PostgreSQL cleanly).</summary>
    public async Task StopAsync(CancellationToken ct = default)
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
        Attacher.Stop();
        // Each loop waits for its round in flight; their own tokens are cancelled at once.
        if (_started) await Task.WhenAll(_loops.Select(loop => loop.StopAsync(CancellationToken.None)));
        return true;
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        foreach (var loop in _loops) loop.Dispose();
        Attacher.Dispose();
        await Pool.DisposeAsync();
    }
}
