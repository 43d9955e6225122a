using Microsoft.Extensions.Logging;

namespace Storage.ComputeProxy.ControlPlane;

/// <summary>Scale to zero: detaches every attached endpoint that has had no session for longer than its suspend timeout.</summary>
public sealed class IdleSuspender(ControlPlaneOptions options, EndpointRegistry registry, SessionTracker sessions, EndpointAttacher attacher,
    ControlPlaneMetrics metrics, ILogger log)
{
    public async Task RunAsync(CancellationToken ct)
    {
        using var timer = new PeriodicTimer(options.HeartbeatInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(ct))
            {
                foreach (var endpoint in registry.List())
                {
                    if (endpoint.VmId is null || sessions.IdleFor(endpoint.Id) < endpoint.SuspendTimeout) continue;
                    try
                    {
                        // Checked again under the endpoint's gate: a session may have started meanwhile.
                        if (await attacher.DetachAsync(endpoint.Id, onlyIfIdle: true, ct))
                        {
                            metrics.Suspends.Add(1);
                            log.LogInformation("endpoint {EndpointId} suspended after {Timeout} without sessions", endpoint.Id, endpoint.SuspendTimeout);
                        }
                    }
                    catch (UnknownEndpointException) { } // deleted meanwhile
                    catch (Exception e) when (e is not OperationCanceledException) { log.LogError("suspend of {EndpointId} failed: {Error}", endpoint.Id, e.Message); }
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested) { }
    }
}
