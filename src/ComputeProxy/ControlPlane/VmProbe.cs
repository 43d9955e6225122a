using Storage.Core.Api;
using Storage.Proto.Compute;

namespace Storage.ComputeProxy.ControlPlane;

/// <summary>What the heartbeat monitor asks of a VM: whether its agent process lives, and a heartbeat.</summary>
public interface IVmProbe
{
    bool IsRunning(Vm vm);
    Task<HeartbeatResponse> HeartbeatAsync(Vm vm, TimeSpan timeout, CancellationToken ct);
}

/// <summary>The real VMs: whether the pool's provider may still have it running (its process, or an external VM), and its Heartbeat call.</summary>
public sealed class AgentProbe(VmPool pool) : IVmProbe
{
    public bool IsRunning(Vm vm) => pool.MayBeAlive(vm);

    public Task<HeartbeatResponse> HeartbeatAsync(Vm vm, TimeSpan timeout, CancellationToken ct) => ComputeClient.HeartbeatAsync(vm.AgentUri, timeout, ct);
}

/// <summary>Told when a VM is found dead (<see cref="Reattacher"/>: fence it, move its endpoint).</summary>
public interface IVmDeaths
{
    Task OnVmDeadAsync(Vm vm, string reason);
}
