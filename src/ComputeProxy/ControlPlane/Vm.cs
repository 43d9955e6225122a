using Storage.Core.Postgres;
using Storage.Proto.Compute;

namespace Storage.ComputeProxy.ControlPlane;

/// <summary>Where a VM is in the pool's life cycle (its agent reports its own <see cref="ComputeState"/>).</summary>
public enum VmState { Idle, Attaching, Attached, Detaching, Dead }

/// <summary>One compute agent of the pool (a process it started, or an external VM). State changes go through <see cref="VmPool"/> under its lock.</summary>
public sealed class Vm : IDisposable
{
    internal Vm(VmRecord record)
    {
        Record = record;
        AgentUri = new Uri($"http://{Host}:{record.GrpcPort}");
    }

    public VmRecord Record { get; }
    public string Id => Record.Id;
    public int Pid => Record.Pid;
    /// <summary>Where its agent and PostgreSQL are reached: this machine, or the VM's own host (an external VM).</summary>
    public string Host => Record.Host ?? "127.0.0.1";
    /// <summary>The agent's control API (called through <see cref="Core.Api.ComputeClient"/>).</summary>
    public Uri AgentUri { get; }
    public VmState State { get; internal set; }
    /// <summary>The endpoint it serves or is being attached to / detached from.</summary>
    public string? EndpointId { get; internal set; }
    /// <summary>What the agent said in its last answered heartbeat.</summary>
    public ComputeState AgentState { get; internal set; }
    public DateTime? LastHeartbeat { get; internal set; }
    /// <summary>The image the agent holds ready while idle (from its last heartbeat or prepare); null: none known.</summary>
    public PreparedImage? Prepared { get; internal set; }

    public bool IsPreparedFor(string tenantId, string timelineId) =>
        Prepared is { } p && p.TenantId == tenantId && p.TimelineId == timelineId && p.ImageLsn != 0;
    internal int Misses;
    /// <summary>When the current run of failed heartbeats began; null while it answers.</summary>
    internal DateTimeOffset? SilentSince;

    public ComputeAddress Address => new(Host, Record.PostgresPort, Id);
    /// <summary>The PostgreSQL this VM's agent runs, as it recorded it (null when none runs).</summary>
    public PostmasterRecord? Postmaster => PostmasterRecord.ReadFrom(Record.WorkDirectory);

    private readonly CancellationTokenSource _retired = new();

    /// <summary>Fires when the VM is declared dead and fenced: sessions relayed to it are over.</summary>
    public CancellationToken Retired => _retired.Token;

    internal void MarkRetired() => _retired.Cancel();

    public void Dispose() => _retired.Dispose();
}
