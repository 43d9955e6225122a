using Microsoft.Extensions.Logging;

namespace Storage.ComputeProxy.ControlPlane;

/// <summary>The proxy's view of the control plane: where an endpoint runs, waking it when it sleeps.</summary>
public sealed class ComputeLocator(EndpointAttacher attacher, VmPool pool, HeartbeatMonitor monitor, SessionTracker sessions, ILogger log) : IComputeLocator
{
    public async Task<ComputeAddress> LocateAsync(string endpointId, CancellationToken ct)
    {
        sessions.Touch(endpointId); // a client is coming: do not suspend under it
        var address = await attacher.EnsureAttachedAsync(endpointId, ct);
        sessions.Touch(endpointId);
        return address;
    }

    /// <summary>
    /// Heartbeats the VM now instead of at the next round: a dead one is retired and the endpoint
    /// reattached; one whose PostgreSQL crashed is left to its agent.
    /// </summary>
    public void Invalidate(string endpointId, ComputeAddress address)
    {
        if (pool.Find(address.VmId) is not { } vm) return; // already retired, the reattach is under way
        _ = Task.Run(async () =>
        {
            try { await monitor.CheckAsync(vm, CancellationToken.None); }
            catch (Exception e) { log.LogError("checking {VmId} for endpoint {EndpointId} failed: {Error}", vm.Id, endpointId, e.Message); }
        });
    }

    public CancellationToken Retired(ComputeAddress address) =>
        pool.Find(address.VmId) is { } vm ? vm.Retired : new CancellationToken(canceled: true); // already retired

    public void SessionStarted(string endpointId) => sessions.Started(endpointId);

    public void SessionEnded(string endpointId) => sessions.Ended(endpointId);
}
