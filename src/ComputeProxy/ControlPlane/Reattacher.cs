using Microsoft.Extensions.Logging;

namespace Storage.ComputeProxy.ControlPlane;

/// <summary>
/// What happens when a VM dies: fence it, move its endpoint to an idle VM at once (no client has to
/// ask), then bring the pool back to full size.
/// </summary>
public sealed class Reattacher(VmPool pool, EndpointRegistry registry, EndpointAttacher attacher, ControlPlaneMetrics metrics, ILogger log) : IVmDeaths
{
    public async Task OnVmDeadAsync(Vm vm, string reason)
    {
        if (await pool.RetireAsync(vm, reason) is not { } retired) return; // someone else handled it
        // An attach in flight on it fails and moves on to another VM by itself.
        if (retired is { Was: VmState.Attached, EndpointId: { } endpointId })
        {
            registry.SetVm(endpointId, null);
            metrics.Reattaches.Inc();
            Reattach(endpointId); // refills after the attach, which must not share the two cores with a VM start
        }
        else pool.RefillSoon();
    }

    /// <summary>Starts attaching <paramref name="endpointId"/> to an idle VM in the background, then refills the pool.</summary>
    public void Reattach(string endpointId) => _ = Task.Run(async () =>
    {
        try
        {
            var address = await attacher.EnsureAttachedAsync(endpointId, CancellationToken.None);
            log.LogInformation("endpoint {EndpointId} reattached to {VmId}", endpointId, address.VmId);
        }
        catch (UnknownEndpointException) { } // deleted meanwhile
        catch (Exception e) { log.LogError("reattach of endpoint {EndpointId} failed: {Error}; the next client will wake it", endpointId, e.Message); }
        finally { pool.RefillSoon(); }
    });
}
