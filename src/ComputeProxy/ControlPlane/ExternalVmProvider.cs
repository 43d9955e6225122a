using Microsoft.Extensions.Logging;

namespace Storage.ComputeProxy.ControlPlane;

/// <summary>
/// A fixed set of compute agents that run elsewhere (VM containers), named by their control API
/// addresses. One joins the pool once its agent answers: its id and PostgreSQL port come from its
/// status, and PostgreSQL is reached on the agent's host. A dead one cannot be killed from here, only
/// dropped from the pool; what fences its PostgreSQL is the term: the compute that takes over its
/// endpoint is elected in a higher term, after which the safekeepers refuse the old one's WAL, so
/// nothing it commits is acknowledged any more. When it answers again (its container restarted), it
/// joins again as an idle VM. A stopping control plane leaves them running for the next one to adopt.
/// </summary>
public sealed class ExternalVmProvider(IReadOnlyList<Uri> agents, ILogger log) : IVmProvider
{
    private static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(2);
    // At start-up a VM that misses its probe is later joined as a new, idle VM, which detaches the
    // endpoint it still serves: a restarted control plane waits longer for each, once.
    private static readonly TimeSpan RecoveryProbeTimeout = TimeSpan.FromSeconds(10);

    public int PoolSize => agents.Count;

    public async Task<IReadOnlyList<Vm>> RecordedAsync(CancellationToken ct) =>
        (await Task.WhenAll(agents.Select(agent => ProbeAsync(agent, RecoveryProbeTimeout, ct)))).OfType<Vm>().ToList();

    public bool MayBeAlive(Vm vm) => true;

    public async Task<Vm?> StartAsync(IReadOnlyCollection<Vm> members, CancellationToken ct)
    {
        foreach (var agent in agents.Where(agent => !members.Any(m => m.Host == agent.Host && m.Record.GrpcPort == agent.Port)))
        {
            if (await ProbeAsync(agent, ProbeTimeout, ct) is not { } vm) continue;
            if (members.FirstOrDefault(m => m.Id == vm.Id) is { } twin)
            {
                log.LogError("the agent at {Agent} calls itself {VmId}, like the one at {Other}: give each VM its own --id", agent, vm.Id, twin.AgentUri);
                vm.Dispose();
                continue;
            }
            log.LogInformation("VM {VmId} joins the pool: agent {Agent}, PostgreSQL {Host}:{Port}, {State}",
                vm.Id, agent, vm.Address.Host, vm.Address.Port, vm.AgentState);
            return vm;
        }
        return null;
    }

    /// <summary>The VM behind <paramref name="agent"/> as its status describes it; null while it does not answer.</summary>
    private static async Task<Vm?> ProbeAsync(Uri agent, TimeSpan timeout, CancellationToken ct)
    {
        try
        {
            var status = await Core.Api.ComputeClient.StatusAsync(agent, timeout, ct);
            return new Vm(new VmRecord(status.VmId, agent.Port, 0, status.PostgresPort, "", 0, agent.Host)) { AgentState = status.State };
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            return null; // down, or not up yet: tried again on the next refill
        }
    }

    /// <summary>Nothing to kill from here (the term fences it); the pool only lets go of it.</summary>
    public Task FenceAsync(Vm vm, bool cacheLater = false)
    {
        vm.Dispose();
        return Task.CompletedTask;
    }

    /// <summary>Left running: not ours to stop, and the next control plane adopts it with its endpoint.</summary>
    public Task StopAsync(Vm vm, TimeSpan grace) => Task.CompletedTask;

    public void DeletePendingCaches() { }
}
