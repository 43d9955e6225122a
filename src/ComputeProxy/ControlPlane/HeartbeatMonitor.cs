using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Storage.Core.Rpc;
using Storage.Proto.Compute;

namespace Storage.ComputeProxy.ControlPlane;

/// <summary>
/// Heartbeats every VM each interval (all at once, so one slow VM does not delay the others). A VM
/// is dead when its process is gone, after K consecutive refused heartbeats, after heartbeats that
/// time out for the unresponsive timeout (a hung agent, not just a slow one), or when an attached VM
/// no longer serves its endpoint (idle, fenced, another endpoint). An agent that reports FAILED
/// for its own endpoint is restarting PostgreSQL: that is its job, so it is left alone.
/// </summary>
public sealed class HeartbeatMonitor(ControlPlaneOptions options, VmPool pool, IVmProbe probe, IVmDeaths deaths, ControlPlaneMetrics metrics,
    ILogger log, TimeProvider time) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken ct)
    {
        using var timer = new PeriodicTimer(options.HeartbeatInterval, time);
        do
        {
            try
            {
                await Task.WhenAll(pool.Snapshot().Select(vm => CheckAsync(vm, ct)));
                pool.RefillSoon(); // a start that failed earlier is retried here
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested) { return; }
            catch (Exception e) { log.LogError("heartbeat round failed: {Error}", e.Message); }
        } while (await WaitAsync(timer, ct));
    }

    private static async Task<bool> WaitAsync(PeriodicTimer timer, CancellationToken ct)
    {
        try { return await timer.WaitForNextTickAsync(ct); }
        catch (OperationCanceledException) { return false; }
    }

    /// <summary>One heartbeat to <paramref name="vm"/> and what follows from it; also used when the proxy reports a failed connect.</summary>
    public async Task CheckAsync(Vm vm, CancellationToken ct)
    {
        if (!probe.IsRunning(vm))
        {
            await deaths.OnVmDeadAsync(vm, "its agent process exited");
            return;
        }
        HeartbeatResponse beat;
        try { beat = await probe.HeartbeatAsync(vm, options.HeartbeatTimeout, ct); }
        catch (Exception e) when (!ct.IsCancellationRequested && vm.State != VmState.Dead)
        {
            metrics.HeartbeatFailures.Inc();
            int misses = Interlocked.Increment(ref vm.Misses);
            var silentFor = time.GetUtcNow() - (vm.SilentSince ??= time.GetUtcNow());
            bool dead = misses >= options.HeartbeatMisses && (RpcErrors.IsRefusal(e) || silentFor >= options.UnresponsiveTimeout);
            if (dead) await deaths.OnVmDeadAsync(vm, $"{misses} heartbeats in a row failed over {silentFor.TotalSeconds:F1} s, the last: {RpcErrors.Describe(e)}");
            return;
        }
        catch (Exception) { return; } // stopping, or it died meanwhile
        Interlocked.Exchange(ref vm.Misses, 0);
        vm.SilentSince = null;
        vm.AgentState = beat.State;
        vm.Prepared = beat.Prepared;
        vm.LastHeartbeat = time.GetUtcNow().UtcDateTime;
        if (vm.State == VmState.Attached && !Serves(beat, vm.EndpointId))
            await deaths.OnVmDeadAsync(vm, $"it no longer serves endpoint '{vm.EndpointId}' (agent state {beat.State}, endpoint '{beat.EndpointId}'{(beat.Reason.Length > 0 ? ": " + beat.Reason : "")})");
    }

    private static bool Serves(HeartbeatResponse beat, string? endpointId) =>
        beat.EndpointId == endpointId && beat.State is ComputeState.Running or ComputeState.Attaching or ComputeState.Failed;
}
