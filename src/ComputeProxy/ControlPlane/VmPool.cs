using Microsoft.Extensions.Logging;
using Storage.Core.Api;
using Storage.Core.Postgres;
using Storage.Core.Processes;
using Storage.Proto.Compute;

namespace Storage.ComputeProxy.ControlPlane;

/// <summary>
/// N compute agents (attached or idle), kept at N: a dead one is fenced and replaced. Where they come
/// from is the <see cref="IVmProvider"/>'s business: processes started here, whose PIDs and ports are
/// persisted so a restarted control plane adopts the ones still running, or external VMs.
/// </summary>
public sealed class VmPool(ControlPlaneOptions options, StateStore store, ControlPlaneMetrics metrics, ILogger log) : IAsyncDisposable
{
    private readonly IVmProvider _provider = IVmProvider.Create(options, store, log);
    private readonly object _lock = new();
    private readonly List<Vm> _vms = new();
    private readonly SemaphoreSlim _refill = new(1, 1);
    private readonly CancellationTokenSource _stopping = new();

    /// <summary>The live VMs (not dead), in start order.</summary>
    public IReadOnlyList<Vm> Snapshot()
    {
        lock (_lock) return _vms.Where(v => v.State != VmState.Dead).ToList();
    }

    public Vm? Find(string vmId)
    {
        lock (_lock) return _vms.FirstOrDefault(v => v.Id == vmId && v.State != VmState.Dead);
    }

    /// <summary>
    /// Adopts the VMs a previous life of the control plane left running: an idle one stays idle, one
    /// still serving the endpoint the registry gives it stays attached, anything else is detached;
    /// records of dead VMs are fenced (their PostgreSQL may outlive them) and dropped.
    /// </summary>
    public async Task RecoverAsync(Func<string, string?> endpointOfVm, CancellationToken ct)
    {
        foreach (var vm in await _provider.RecordedAsync(ct))
        {
            // Patient: a VM that misses this answer is fenced, and with it the endpoint it serves.
            var state = _provider.MayBeAlive(vm) ? await TryAdoptAsync(vm, endpointOfVm(vm.Id), RecoveryStatusTimeout, ct) : VmState.Dead;
            if (state == VmState.Dead)
            {
                log.LogWarning("VM {VmId} (pid {Pid}) from the previous run cannot be reused; fencing it", vm.Id, vm.Pid);
                await _provider.FenceAsync(vm);
                continue;
            }
            vm.State = state;
            lock (_lock) _vms.Add(vm);
            log.LogInformation("adopted VM {VmId} (pid {Pid}) as {State} {Endpoint}", vm.Id, vm.Pid, state, vm.EndpointId);
        }
    }

    private static readonly TimeSpan RecoveryStatusTimeout = TimeSpan.FromSeconds(10), JoinStatusTimeout = TimeSpan.FromSeconds(3);

    private async Task<VmState> TryAdoptAsync(Vm vm, string? expectedEndpoint, TimeSpan statusTimeout, CancellationToken ct)
    {
        try
        {
            var status = await ComputeClient.StatusAsync(vm.AgentUri, statusTimeout, ct);
            vm.AgentState = status.State;
            if (expectedEndpoint is not null && status.EndpointId == expectedEndpoint && status.State is ComputeState.Running or ComputeState.Failed or ComputeState.Attaching)
            {
                vm.EndpointId = expectedEndpoint;
                return VmState.Attached;
            }
            if (status.State != ComputeState.Idle) await ComputeClient.DetachAsync(vm.AgentUri, TimeSpan.FromSeconds(30), ct);
            return VmState.Idle;
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            log.LogWarning("VM {VmId} does not answer: {Error}", vm.Id, e.Message);
            return VmState.Dead;
        }
    }

    /// <summary>False only when the VM is known to be gone (its process exited).</summary>
    public bool MayBeAlive(Vm vm) => _provider.MayBeAlive(vm);

    /// <summary>Starts VMs until the pool holds <see cref="IVmProvider.PoolSize"/> live ones. One refill runs at a time.</summary>
    public async Task RefillAsync(CancellationToken ct = default)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, _stopping.Token);
        await _refill.WaitAsync(linked.Token);
        try
        {
            for (int failures = 0; Snapshot().Count < _provider.PoolSize && failures < 3;)
            {
                try
                {
                    if (!await StartVmAsync(linked.Token)) break; // none can join now (external VMs not answering): the next round tries again
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    failures++;
                    log.LogError("starting a VM failed: {Error}", e.Message);
                    await Task.Delay(TimeSpan.FromSeconds(1), linked.Token);
                }
            }
        }
        finally { _refill.Release(); }
    }

    /// <summary>Refills in the background unless a refill already runs or the pool is full.</summary>
    public void RefillSoon()
    {
        if (_stopping.IsCancellationRequested || _refill.CurrentCount == 0 || Snapshot().Count >= _provider.PoolSize) return;
        _ = Task.Run(async () =>
        {
            try { await RefillAsync(); }
            catch (OperationCanceledException) { }
            catch (Exception e) { log.LogError("refilling the pool failed: {Error}", e.Message); }
        });
    }

    /// <summary>One more VM from the provider, in the pool once it answers as idle (one that still runs something is detached first).</summary>
    private async Task<bool> StartVmAsync(CancellationToken ct)
    {
        if (await _provider.StartAsync(Snapshot(), ct) is not { } vm) return false;
        if (await TryAdoptAsync(vm, expectedEndpoint: null, JoinStatusTimeout, ct) != VmState.Idle)
        {
            await _provider.FenceAsync(vm);
            throw new InvalidOperationException($"{vm.Id} did not answer as idle");
        }
        vm.State = VmState.Idle;
        lock (_lock) _vms.Add(vm);
        metrics.VmStarts.Inc();
        return true;
    }

    /// <summary>
    /// Takes an idle VM for <paramref name="endpointId"/>, a <paramref name="preferred"/> one if any,
    /// waiting (and refilling) while there is none.
    /// </summary>
    public async Task<Vm> AcquireIdleAsync(string endpointId, Func<Vm, bool> preferred, CancellationToken ct)
    {
        while (true)
        {
            lock (_lock)
            {
                var idle = _vms.Where(v => v.State == VmState.Idle).ToList();
                if ((idle.FirstOrDefault(preferred) ?? idle.FirstOrDefault()) is { } vm)
                {
                    vm.State = VmState.Attaching;
                    vm.EndpointId = endpointId;
                    return vm;
                }
            }
            RefillSoon();
            await Task.Delay(100, ct);
        }
    }

    /// <summary>Attaching -> Attached; false if the VM died meanwhile.</summary>
    public bool MarkAttached(Vm vm) => Move(vm, VmState.Attaching, VmState.Attached);

    /// <summary>Attached -> Detaching; false if it is not attached (any more).</summary>
    public bool BeginDetach(Vm vm) => Move(vm, VmState.Attached, VmState.Detaching);

    /// <summary>Back to idle after a detach or a failed attach, unless it died meanwhile.</summary>
    public void Release(Vm vm)
    {
        lock (_lock)
        {
            if (vm.State is not (VmState.Attaching or VmState.Detaching)) return;
            vm.State = VmState.Idle;
            vm.EndpointId = null;
        }
    }

    private bool Move(Vm vm, VmState from, VmState to)
    {
        lock (_lock)
        {
            if (vm.State != from) return false;
            vm.State = to;
            return true;
        }
    }

    /// <summary>
    /// Declares <paramref name="vm"/> dead, fences it (SIGKILL the agent and its PostgreSQL, so a
    /// compute nobody supervises cannot serve stale reads) and forgets it. Returns the state it was
    /// in and its endpoint, or null if someone else retired it first.
    /// </summary>
    public async Task<(VmState Was, string? EndpointId)?> RetireAsync(Vm vm, string reason)
    {
        VmState was;
        lock (_lock)
        {
            if (vm.State == VmState.Dead) return null;
            was = vm.State;
            vm.State = VmState.Dead;
            _vms.Remove(vm);
        }
        metrics.VmDeaths.Inc();
        log.LogWarning("VM {VmId} (pid {Pid}, {State} {Endpoint}) is dead: {Reason}", vm.Id, vm.Pid, was, vm.EndpointId, reason);
        vm.MarkRetired(); // the proxy ends the sessions relayed to it: a frozen VM would hold them forever
        await _provider.FenceAsync(vm, cacheLater: true);
        return (was, vm.EndpointId);
    }

    /// <summary>
    /// Stops every VM (a process VM: SIGTERM lets its agent stop its PostgreSQL cleanly, its last WAL
    /// committed, SIGKILL after a grace period); then nothing of them is left and no record remains.
    /// </summary>
    public async Task StopAllAsync(TimeSpan grace)
    {
        _stopping.Cancel();
        List<Vm> vms;
        lock (_lock)
        {
            vms = _vms.ToList();
            foreach (var vm in vms) vm.State = VmState.Dead;
            _vms.Clear();
        }
        await Task.WhenAll(vms.Select(async vm =>
        {
            await _provider.StopAsync(vm, grace);
            await _provider.FenceAsync(vm);
        }));
        _provider.DeletePendingCaches();
    }

    /// <summary>Stops refilling but leaves the VMs running, as a crashed control plane would (for its successor to adopt).</summary>
    public void Abandon()
    {
        _stopping.Cancel();
        lock (_lock) foreach (var vm in _vms) vm.Dispose();
    }

    /// <summary>The PID is one of our compute agents (not a PID reused by something else since).</summary>
    public static bool IsAgent(int pid) => IsProcess(pid, ComputeCommand.AssemblyName + ".dll");

    private static bool IsProcess(int pid, string commandLinePart)
    {
        if (pid <= 0 || !ServiceProcess.IsAlive(pid)) return false;
        try { return File.ReadAllText($"/proc/{pid}/cmdline").Contains(commandLinePart, StringComparison.Ordinal); }
        catch (IOException) { return false; }
    }

    public ValueTask DisposeAsync()
    {
        _stopping.Dispose();
        _refill.Dispose();
        return ValueTask.CompletedTask;
    }
}
