using Storage.Core.Auth;
namespace Storage.ComputeProxy.ControlPlane;

/// <summary>How a control plane runs: where it keeps its state and VMs, how big the pool is, how fast it notices a death.</summary>
public sealed record ControlPlaneOptions
{
    /// <summary>Holds state.bin (the registry and the VMs' PIDs) and one work directory per VM.</summary>
    public required string DataDirectory { get; init; }
    /// <summary>The safekeepers' and pageservers' gRPC addresses every attach is given.</summary>
    public required IReadOnlyList<Uri> Safekeepers { get; init; }
    public required IReadOnlyList<Uri> Pageservers { get; init; }
    /// <summary>Mints each attach's (and prepare's) tenant-bound compute token.</summary>
    public required ComputeTokens ComputeTokens { get; init; }
    /// <summary>The cluster's public key, given to the VMs it starts (their agents check the control plane's token).</summary>
    public string? PublicKeyFile { get; init; }
    /// <summary>The storage controller, asked which pageserver a timeline is attached to; null: the configured order.</summary>
    public Uri? Controller { get; init; }

    /// <summary>Compute agents kept running, attached or idle; a dead one is replaced.</summary>
    public int PoolSize { get; init; } = 2;
    /// <summary>
    /// Control API addresses of compute agents that run elsewhere (VM containers): when given, the
    /// pool is these VMs instead of processes it starts (<see cref="ExternalVmProvider"/>), and <see cref="PoolSize"/> is ignored.
    /// </summary>
    public IReadOnlyList<Uri> ExternalVms { get; init; } = [];
    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromMilliseconds(500);
    /// <summary>
    /// How long one heartbeat may take. Longer than the interval on purpose: a dead agent is found by
    /// its exited process or a refused connection at once, while a busy one (a GC pause, a
    /// basebackup on two cores) must not be killed for a slow answer.
    /// </summary>
    public TimeSpan HeartbeatTimeout { get; init; } = TimeSpan.FromSeconds(1);
    /// <summary>Consecutive refused heartbeats after which a VM whose process still exists counts as dead.</summary>
    public int HeartbeatMisses { get; init; } = 3;
    /// <summary>
    /// How long a VM whose process lives may leave heartbeats timing out before it counts as dead (a
    /// hung agent). Longer than the misses above: on two starved cores a live agent can be slow for
    /// seconds, and killing it costs its endpoint a reattach.
    /// </summary>
    public TimeSpan UnresponsiveTimeout { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>How long a wake (or a reattach) may take: finding an idle VM, attaching, PostgreSQL accepting connections.</summary>
    public TimeSpan WakeTimeout { get; init; } = TimeSpan.FromSeconds(90);
    /// <summary>Suspend timeout of endpoints created without one.</summary>
    public TimeSpan DefaultSuspendTimeout { get; init; } = TimeSpan.FromMinutes(5);
    /// <summary>The compute agent assembly; null: Storage.Compute.dll beside the running program.</summary>
    public string? ComputeAssembly { get; init; }
    public TimeSpan VmStartTimeout { get; init; } = TimeSpan.FromSeconds(60);
    /// <summary>How often idle VMs are prepared (or refreshed) for the attached endpoints' timelines; zero: never.</summary>
    public TimeSpan PrepareInterval { get; init; } = TimeSpan.FromSeconds(2);

    internal void Validate()
    {
        if (PoolSize < 1) throw new ArgumentException("the pool needs at least one VM");
        if (HeartbeatInterval <= TimeSpan.Zero || HeartbeatMisses < 1) throw new ArgumentException("heartbeat interval and misses must be positive");
        if (Safekeepers.Count == 0 || (Pageservers.Count == 0 && Controller is null)) throw new ArgumentException("an attach needs safekeepers, and pageservers or a storage controller");
    }
}
