using System.Collections.Concurrent;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Storage.Core.Api;
using Storage.Core.Observability;
using Storage.Proto.Compute;

namespace Storage.ComputeProxy.ControlPlane;

/// <summary>
/// Attaches endpoints to pooled VMs and detaches them. Operations on one endpoint run one at a time
/// (a wake never races a suspend), and concurrent wakes of one endpoint share a single attach.
/// </summary>
public sealed class EndpointAttacher(ControlPlaneOptions options, EndpointRegistry registry, VmPool pool, SessionTracker sessions,
    PageserverRoute pageservers, ControlPlaneMetrics metrics, ILogger log) : IDisposable
{
    private static readonly TimeSpan DetachTimeout = TimeSpan.FromSeconds(60);
    private readonly ConcurrentDictionary<string, SemaphoreSlim> _gates = new();
    private readonly Dictionary<string, Task<ComputeAddress>> _wakes = new();
    private readonly CancellationTokenSource _stopping = new();

    /// <summary>The VM serving the endpoint now, or null while it has none. Throws for an unknown endpoint.</summary>
    public ComputeAddress? CurrentAddress(string endpointId)
    {
        var endpoint = registry.Get(endpointId);
        return endpoint.VmId is { } vmId && pool.Find(vmId) is { State: VmState.Attached } vm && vm.EndpointId == endpointId ? vm.Address : null;
    }

    /// <summary>The endpoint's address, attaching it to an idle VM first if it has none (bounded by the wake timeout).</summary>
    public async Task<ComputeAddress> EnsureAttachedAsync(string endpointId, CancellationToken ct)
    {
        if (CurrentAddress(endpointId) is { } address) return address;
        Task<ComputeAddress> wake;
        lock (_wakes)
        {
            if (!_wakes.TryGetValue(endpointId, out var running)) _wakes[endpointId] = running = WakeAsync(endpointId);
            wake = running;
        }
        // The wake is not the caller's: one client giving up does not cancel it for the others.
        return await wake.WaitAsync(ct);
    }

    private async Task<ComputeAddress> WakeAsync(string endpointId)
    {
        await Task.Yield(); // the caller registers this task in _wakes first
        try
        {
            var gate = Gate(endpointId);
            await gate.WaitAsync(_stopping.Token);
            try { return CurrentAddress(endpointId) ?? await AttachAsync(registry.Get(endpointId)); }
            finally { gate.Release(); }
        }
        finally
        {
            lock (_wakes) _wakes.Remove(endpointId);
        }
    }

    private async Task<ComputeAddress> AttachAsync(EndpointRecord endpoint)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
        deadline.CancelAfter(options.WakeTimeout);
        var clock = new PhaseClock();
        Exception? last = null;
        try
        {
            for (int attempt = 0; ; attempt++)
            {
                // A VM prepared for this timeline needs only the WAL since its image.
                var vm = await pool.AcquireIdleAsync(endpoint.Id, v => v.IsPreparedFor(endpoint.TenantId, endpoint.TimelineId), deadline.Token);
                clock.Mark("idle VM");
                bool attached = false;
                try
                {
                    var request = await NewAttachRequestAsync(endpoint, deadline.Token);
                    clock.Mark("placement");
                    var status = await ComputeClient.AttachAsync(vm.AgentUri, request, options.WakeTimeout, deadline.Token);
                    clock.Mark("agent attach");
                    if (status.State != ComputeState.Running) throw new InvalidOperationException($"attach left {vm.Id} {status.State}: {status.Reason}");
                    await WaitUntilAcceptingAsync(vm.Address, deadline.Token);
                    clock.Mark("port check");
                    if (!pool.MarkAttached(vm)) throw new InvalidOperationException($"{vm.Id} died during the attach");
                    attached = true;
                    registry.SetVm(endpoint.Id, vm.Id);
                    sessions.Touch(endpoint.Id);
                    metrics.Wakes.Inc();
                    metrics.WakeLatency.Observe(clock.Elapsed.TotalSeconds);
                    log.LogInformation("endpoint {EndpointId} attached to {VmId} (PostgreSQL port {Port}): {Phases}",
                        endpoint.Id, vm.Id, vm.Record.PostgresPort, clock);
                    return vm.Address;
                }
                catch (Exception e) when (!deadline.IsCancellationRequested)
                {
                    last = e;
                    metrics.WakeFailures.Inc();
                    log.LogWarning("attach of endpoint {EndpointId} to {VmId} failed: {Error}", endpoint.Id, vm.Id, e.Message);
                    // A VM that died is retired by the heartbeats; one that refused goes back and may be tried again.
                    await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(2000, 200 << Math.Min(attempt, 4))), deadline.Token);
                }
                finally
                {
                    if (!attached) pool.Release(vm);
                }
            }
        }
        catch (OperationCanceledException) when (!_stopping.IsCancellationRequested)
        {
            throw new TimeoutException($"endpoint '{endpoint.Id}' could not be attached to a VM within {options.WakeTimeout.TotalSeconds:0.#} s"
                + (last is null ? " (no idle VM)" : $": {last.Message}"));
        }
    }

    private async Task<AttachRequest> NewAttachRequestAsync(EndpointRecord endpoint, CancellationToken ct)
    {
        var request = new AttachRequest
        {
            TenantId = endpoint.TenantId,
            TimelineId = endpoint.TimelineId,
            Endpoint = new EndpointSettings { EndpointId = endpoint.Id, RoleName = endpoint.RoleName, RolePassword = endpoint.RolePassword },
            Token = options.ComputeTokens.For(endpoint.TenantId, endpoint.Id),
        };
        foreach (var (name, value) in endpoint.PostgresSettings) request.Endpoint.PostgresSettings[name] = value;
        request.Safekeepers.AddRange(options.Safekeepers.Select(u => u.ToString()));
        request.Pageservers.AddRange((await pageservers.ForTimelineAsync(endpoint.TenantId, endpoint.TimelineId, ct)).Select(u => u.ToString()));
        return request;
    }

    /// <summary>The agent says RUNNING once PostgreSQL serves; a TCP connect confirms it from where clients stand.</summary>
    private static async Task WaitUntilAcceptingAsync(ComputeAddress address, CancellationToken ct)
    {
        while (true)
        {
            try
            {
                using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                await socket.ConnectAsync(address.Host, address.Port, ct);
                return;
            }
            catch (SocketException) { await Task.Delay(50, ct); }
        }
    }

    /// <summary>
    /// Detaches the endpoint from its VM (PostgreSQL stops cleanly, the VM goes back to the pool).
    /// With <paramref name="onlyIfIdle"/>, only if it is still idle past its suspend timeout once this
    /// endpoint's turn comes. Returns whether it was attached.
    /// </summary>
    public async Task<bool> DetachAsync(string endpointId, bool onlyIfIdle, CancellationToken ct)
    {
        var gate = Gate(endpointId);
        await gate.WaitAsync(ct);
        try { return await DetachHoldingGateAsync(registry.Get(endpointId), onlyIfIdle, ct); }
        finally { gate.Release(); }
    }

    private async Task<bool> DetachHoldingGateAsync(EndpointRecord endpoint, bool onlyIfIdle, CancellationToken ct)
    {
        if (endpoint.VmId is not { } vmId) return false;
        if (onlyIfIdle && sessions.IdleFor(endpoint.Id) < endpoint.SuspendTimeout) return false;
        registry.SetVm(endpoint.Id, null); // from here on a locate wakes it anew (after this detach)
        if (pool.Find(vmId) is not { } vm || vm.EndpointId != endpoint.Id || !pool.BeginDetach(vm)) return true; // its VM died meanwhile
        try
        {
            await ComputeClient.DetachAsync(vm.AgentUri, DetachTimeout, ct);
            pool.Release(vm);
            log.LogInformation("endpoint {EndpointId} detached; {VmId} is idle again", endpoint.Id, vm.Id);
        }
        catch (Exception e)
        {
            // A VM that cannot detach cannot be trusted with the next endpoint.
            await pool.RetireAsync(vm, $"detach of endpoint '{endpoint.Id}' failed: {e.Message}");
            pool.RefillSoon();
        }
        return true;
    }

    /// <summary>Detaches (if attached) and removes the endpoint from the registry.</summary>
    public async Task DeleteAsync(string endpointId, CancellationToken ct)
    {
        var gate = Gate(endpointId);
        await gate.WaitAsync(ct);
        try
        {
            await DetachHoldingGateAsync(registry.Get(endpointId), onlyIfIdle: false, ct);
            registry.Delete(endpointId);
            sessions.Forget(endpointId);
        }
        finally { gate.Release(); }
    }

    private SemaphoreSlim Gate(string endpointId) => _gates.GetOrAdd(endpointId, _ => new SemaphoreSlim(1, 1));

    /// <summary>Cancels wakes in flight (their callers see the cancellation).</summary>
    public void Stop() => _stopping.Cancel();

    public void Dispose() => _stopping.Dispose();
}
