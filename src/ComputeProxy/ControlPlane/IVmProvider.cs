using Microsoft.Extensions.Logging;

namespace Storage.ComputeProxy.ControlPlane;

/// <summary>
/// Where the pool's VMs come from and how a dead one is put down: <see cref="ProcessVmProvider"/>
/// starts compute agent processes on this machine and SIGKILLs dead ones; <see cref="ExternalVmProvider"/>
/// uses a fixed set of agents that run elsewhere (containers), which it can neither start nor kill.
/// The pool's life cycle (idle, attached, dead, reattach) is the same for both (<see cref="VmPool"/>).
/// </summary>
public interface IVmProvider
{
    /// <summary>How many VMs the pool keeps.</summary>
    int PoolSize { get; }

    /// <summary>VMs that may be running from before this control plane started; each is adopted if it answers, else fenced.</summary>
    Task<IReadOnlyList<Vm>> RecordedAsync(CancellationToken ct);

    /// <summary>False only when the VM is known to be gone (its process exited); otherwise the heartbeats decide.</summary>
    bool MayBeAlive(Vm vm);

    /// <summary>One more VM for the pool (not one of <paramref name="members"/>); null when none can join now.</summary>
    Task<Vm?> StartAsync(IReadOnlyCollection<Vm> members, CancellationToken ct);

    /// <summary>
    /// Makes sure a dead VM serves nothing any more and forgets it. <paramref name="cacheLater"/>: its
    /// PostgreSQL files may be deleted after a pause (the reattach that follows a death goes first).
    /// </summary>
    Task FenceAsync(Vm vm, bool cacheLater = false);

    /// <summary>Stops a VM when the control plane stops (it is fenced afterwards).</summary>
    Task StopAsync(Vm vm, TimeSpan grace);

    /// <summary>Deletes at once what <see cref="FenceAsync"/> left for later.</summary>
    void DeletePendingCaches();

    /// <summary>External VMs when the options name any, else processes the pool starts itself.</summary>
    static IVmProvider Create(ControlPlaneOptions options, StateStore store, ILogger log) =>
        options.ExternalVms.Count > 0 ? new ExternalVmProvider(options.ExternalVms, log) : new ProcessVmProvider(options, store, log);
}
