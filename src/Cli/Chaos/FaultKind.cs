namespace Storage.Cli.Chaos;

/// <summary>SIGKILL (then a restart, unless the control plane owns the component) or SIGSTOP (then SIGCONT).</summary>
public enum FaultAction { Kill, Stop }

/// <summary>The part of the cluster a fault hits; pageservers by the role the controller gives them when the fault starts.</summary>
public enum FaultTarget { Safekeepers, AttachedPageserver, SecondaryPageserver, Controller, Proxy, Vm, Postgres }

/// <summary>
/// One kind of fault: what is done to which component. Every kind is listed in <see cref="All"/>;
/// the schedule draws from that list.
/// </summary>
public sealed record FaultKind(string Name, FaultAction Action, FaultTarget Target, int SafekeeperCount = 0)
{
    /// <summary>
    /// How long a live process may be silent before the component that watches it gives up on it:
    /// the control plane's unresponsive timeout for a VM and the storage controller's for a
    /// pageserver (10 s by default, ControlPlaneOptions and ControllerOptions). Nothing fails over a
    /// safekeeper, the controller, the proxy or a single PostgreSQL: those have none.
    /// </summary>
    public static readonly TimeSpan WatchedFailureTimeout = TimeSpan.FromSeconds(10);

    public static readonly IReadOnlyList<FaultKind> All =
    [
        new("kill-safekeeper", FaultAction.Kill, FaultTarget.Safekeepers, 1),
        new("kill-two-safekeepers", FaultAction.Kill, FaultTarget.Safekeepers, 2),
        new("kill-all-safekeepers", FaultAction.Kill, FaultTarget.Safekeepers, 3),
        new("kill-attached-pageserver", FaultAction.Kill, FaultTarget.AttachedPageserver),
        new("kill-secondary-pageserver", FaultAction.Kill, FaultTarget.SecondaryPageserver),
        new("kill-controller", FaultAction.Kill, FaultTarget.Controller),
        new("kill-proxy", FaultAction.Kill, FaultTarget.Proxy),
        new("kill-vm", FaultAction.Kill, FaultTarget.Vm),
        new("kill-postgres", FaultAction.Kill, FaultTarget.Postgres),
        new("stop-safekeeper", FaultAction.Stop, FaultTarget.Safekeepers, 1),
        new("stop-two-safekeepers", FaultAction.Stop, FaultTarget.Safekeepers, 2),
        new("stop-all-safekeepers", FaultAction.Stop, FaultTarget.Safekeepers, 3),
        new("stop-attached-pageserver", FaultAction.Stop, FaultTarget.AttachedPageserver),
        new("stop-secondary-pageserver", FaultAction.Stop, FaultTarget.SecondaryPageserver),
        new("stop-controller", FaultAction.Stop, FaultTarget.Controller),
        new("stop-proxy", FaultAction.Stop, FaultTarget.Proxy),
        new("stop-vm", FaultAction.Stop, FaultTarget.Vm),
        new("stop-postgres", FaultAction.Stop, FaultTarget.Postgres),
    ];

    /// <summary>A kind by name, e.g. "kill-two-safekeepers"; unknown names get a clear error.</summary>
    public static FaultKind Parse(string name) =>
        All.FirstOrDefault(k => k.Name.Equals(name.Trim(), StringComparison.OrdinalIgnoreCase))
        ?? throw new CliError($"unknown fault kind '{name}'; expected one of {string.Join(", ", All.Select(k => k.Name))}");

    /// <summary>Faults in one step hit different groups, so two never fight over one process.</summary>
    public string Group => Target switch
    {
        FaultTarget.AttachedPageserver or FaultTarget.SecondaryPageserver => "pageservers",
        FaultTarget.Vm or FaultTarget.Postgres => "compute",
        _ => Target.ToString().ToLowerInvariant(),
    };

    /// <summary>
    /// Components the control plane owns (the VMs and their PostgreSQL) are never restarted by hand:
    /// the control plane reattaches the endpoint, the agent restarts PostgreSQL.
    /// </summary>
    public bool RestartedByHand => Action == FaultAction.Kill && Target is not (FaultTarget.Vm or FaultTarget.Postgres);

    /// <summary>The range a fault's duration is drawn from (how long it stays dead or stopped before it is healed).</summary>
    public (TimeSpan Min, TimeSpan Max) HoldRange => Action switch
    {
        FaultAction.Kill when !RestartedByHand => (TimeSpan.Zero, TimeSpan.Zero),
        // Up to 20 s: long enough for 10 s timers (watchers' timeouts, the replication client's unasked status report) to fire meanwhile.
        FaultAction.Kill => (TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(20)),
        // Longer than the watcher's timeout: a frozen VM or pageserver is a partitioned one, and is replaced.
        _ when Target is FaultTarget.Vm or FaultTarget.AttachedPageserver or FaultTarget.SecondaryPageserver =>
            (WatchedFailureTimeout + TimeSpan.FromSeconds(2), WatchedFailureTimeout + TimeSpan.FromSeconds(10)),
        _ => (TimeSpan.FromSeconds(3), TimeSpan.FromSeconds(12)),
    };

    public override string ToString() => Name;
}
