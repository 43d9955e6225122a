using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Storage.ComputeProxy.ControlPlane;

/// <summary>Scale to zero: every heartbeat interval, detaches each attached endpoint that has had no session for longer than its suspend timeout.</summary>
public sealed class IdleSuspender(ControlPlaneOptions options, EndpointRegistry registry, SessionTracker sessions, EndpointAttacher attacher,
    ControlPlaneMetrics metrics, ILogger log, TimeProvider time) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken ct)
    {
        using var timer = new PeriodicTimer(options.HeartbeatInterval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(ct)) await SuspendIdleAsync(ct);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested) { }
    }

    /// <summary>One round: suspends the endpoints idle past their timeout; returns how many it suspended.</summary>
    public async Task<int> SuspendIdleAsync(CancellationToken ct)
    {
        int suspended = 0;
        foreach (var endpoint in registry.List())
        {
            if (endpoint.VmId is null || sessions.IdleFor(endpoint.Id) < endpoint.SuspendTimeout) continue;
            try
            {
                // Checked again under the endpoint's gate: a session may have started meanwhile.
                if (await attacher.DetachAsync(endpoint.Id, onlyIfIdle: true, ct))
                {
                    suspended++;
                    metrics.Suspends.Inc();
                    log.LogInformation("endpoint {EndpointId} suspended after {Timeout} without sessions", endpoint.Id, endpoint.SuspendTimeout);
                }
            }
            catch (UnknownEndpointException) { } // deleted meanwhile
            catch (Exception e) when (e is not OperationCanceledException) { log.LogError("suspend of {EndpointId} failed: {Error}", endpoint.Id, e.Message); }
        }
        return suspended;
    }
}
