using Storage.Core.Api;
using Storage.Core.Processes;

namespace Storage.Cli.Chaos;

/// <summary>
/// The processes a fault hits, resolved (roles looked up) before any fault of its step is injected:
/// processes of cluster.json, or processes of the endpoint's VM (which the control plane owns).
/// </summary>
public sealed record FaultTargets(IReadOnlyList<IProcessEntry> Processes, IReadOnlyList<int> VmPids, string Label)
{
    public static FaultTargets Of(params IProcessEntry[] processes) =>
        new(processes, [], string.Join(", ", processes.Select(p => $"{p.Name} (pid {p.Pid})")));

    public override string ToString() => Label;
}

/// <summary>A fault in effect: what was done, and what undoes it.</summary>
public sealed class ActiveFault(FaultSpec spec, FaultTargets targets, IReadOnlyList<int> frozen)
{
    public FaultSpec Spec { get; } = spec;
    public FaultTargets Targets { get; } = targets;
    /// <summary>The PIDs a stop froze (SIGCONT on heal); empty for a kill.</summary>
    public IReadOnlyList<int> Frozen { get; } = frozen;
    public bool Healed { get; set; }
}

/// <summary>
/// Kills, stops, continues and restarts the cluster's components through storagectl's own cluster
/// state (cluster.json's PIDs, the control plane's view of its VMs, the controller's placements).
/// A restarted process's new PID is saved to cluster.json at once, so `down` finds it.
/// </summary>
public sealed class FaultInjector(ClusterDirectory dir, ClusterState state, string endpointId)
{
    private static readonly TimeSpan AskTimeout = TimeSpan.FromSeconds(5);
    private const int StartAttempts = 3;
    private readonly ClusterProcesses _processes = new(dir);
    private readonly ControlPlaneVms _vms = new(dir, state);
    private readonly Lock _saveLock = new();

    /// <summary>Finds what <paramref name="spec"/> hits now: safekeepers by number, pageservers by role, the endpoint's VM.</summary>
    public async Task<FaultTargets> ResolveAsync(FaultSpec spec) => spec.Kind.Target switch
    {
        FaultTarget.Safekeepers => FaultTargets.Of(spec.Safekeepers.Select(n => (IProcessEntry)state.Find(n.ToString())).ToArray()),
        FaultTarget.AttachedPageserver => FaultTargets.Of(await PageserverAsync(attached: true)),
        FaultTarget.SecondaryPageserver => FaultTargets.Of(await PageserverAsync(attached: false)),
        FaultTarget.Controller => FaultTargets.Of(state.Controller ?? throw new CliError("this cluster has no storage controller")),
        FaultTarget.Proxy => FaultTargets.Of(state.RequiredProxy),
        FaultTarget.Vm or FaultTarget.Postgres => VmTargets(await _vms.ProcessesOfAsync(endpointId), postgresOnly: spec.Kind.Target == FaultTarget.Postgres),
        _ => throw new ArgumentOutOfRangeException(nameof(spec), spec.Kind.Target, "unknown target"),
    };

    /// <summary>SIGKILL or SIGSTOP of the targets; returns the fault to heal later.</summary>
    public async Task<ActiveFault> InjectAsync(FaultSpec spec, FaultTargets targets)
    {
        if (spec.Kind.Action == FaultAction.Stop)
            return new ActiveFault(spec, targets, ProcessTree.Freeze(RootPids(targets)));
        foreach (var process in targets.Processes) await _processes.KillAsync(process);
        foreach (var pid in targets.VmPids) await ServiceProcess.KillPidAsync(pid);
        return new ActiveFault(spec, targets, []);
    }

    /// <summary>
    /// Undoes a fault: SIGCONT to what it froze, or a restart of what it killed (each retried a few
    /// times); a killed VM or PostgreSQL is left to the control plane and the agent. Returns what it did.
    /// </summary>
    public async Task<string> HealAsync(ActiveFault fault)
    {
        if (fault.Healed) return "already healed";
        fault.Healed = true;
        if (fault.Spec.Kind.Action == FaultAction.Stop)
        {
            ProcessTree.Thaw(fault.Frozen);
            return $"continued {fault.Frozen.Count} process(es) of {fault.Targets}";
        }
        if (!fault.Spec.Kind.RestartedByHand)
            return fault.Spec.Kind.Target == FaultTarget.Vm ? "left to the control plane (it reattaches the endpoint)" : "left to the VM's agent (it restarts PostgreSQL)";
        var started = await Task.WhenAll(fault.Targets.Processes.Select(RestartAsync));
        return "started " + string.Join(", ", started);
    }

    private async Task<string> RestartAsync(IProcessEntry process)
    {
        for (int attempt = 1; ; attempt++)
        {
            if (ClusterProcesses.IsRunning(process)) return $"{process.Name} (already running, pid {process.Pid})";
            try
            {
                await _processes.StartAsync(process, state);
                lock (_saveLock) dir.Save(state);
                return $"{process.Name} (pid {process.Pid})";
            }
            catch (Exception e) when (e is CliError or IOException or TimeoutException && attempt < StartAttempts)
            {
                await Task.Delay(TimeSpan.FromSeconds(attempt));
            }
        }
    }

    /// <summary>What a stop freezes: each process (with its tree), or the VM's agent and PostgreSQL (with theirs).</summary>
    private static IEnumerable<int> RootPids(FaultTargets targets) =>
        targets.Processes.Select(p => p.Pid ?? throw new CliError($"{p.Name} has no recorded PID")).Concat(targets.VmPids);

    /// <summary>The VM's agent and PostgreSQL (a frozen or dead VM), or PostgreSQL alone.</summary>
    private FaultTargets VmTargets(VmProcesses vm, bool postgresOnly)
    {
        if (!postgresOnly) return new([], vm.Pids.ToList(), vm.ToString());
        return vm.PostgresPid is int pid
            ? new([], [pid], $"PostgreSQL of {vm.VmId} (pid {pid})")
            : throw new CliError($"no PostgreSQL runs on {vm.VmId} (endpoint {endpointId})");
    }

    private async Task<IProcessEntry> PageserverAsync(bool attached)
    {
        var controller = state.Controller ?? throw new CliError("this cluster has no storage controller to ask which pageserver is attached");
        var status = await ControllerClient.StatusAsync(controller.Uri, AskTimeout);
        var placement = status.Placements.FirstOrDefault(p => p.Timeline.TenantId == state.TenantId && p.Timeline.TimelineId == state.TimelineId)
            ?? throw new CliError($"the controller has not placed timeline {state.TimelineId}");
        var node = attached ? placement.AttachedNode : placement.SecondaryNode;
        if (string.IsNullOrEmpty(node)) throw new CliError($"timeline {state.TimelineId} has no {(attached ? "attached" : "secondary")} pageserver now");
        return state.FindProcess(node);
    }
}
