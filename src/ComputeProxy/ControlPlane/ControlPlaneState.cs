using Storage.Core.Storage;

namespace Storage.ComputeProxy.ControlPlane;

/// <summary>One endpoint as the registry keeps it: what an attach needs, and the VM serving it (null while suspended).</summary>
public sealed record EndpointRecord(
    string Id,
    string TenantId,
    string TimelineId,
    string RoleName,
    string RolePassword,
    IReadOnlyDictionary<string, string> PostgresSettings,
    TimeSpan SuspendTimeout,
    string? VmId = null);

/// <summary>
/// A compute agent the pool started: enough to find it again (or kill it) after a restart. An
/// external VM (never persisted) has no work directory or PID here, and its own <paramref name="Host"/>.
/// </summary>
public sealed record VmRecord(string Id, int GrpcPort, int HttpPort, int PostgresPort, string WorkDirectory, int Pid, string? Host = null);

/// <summary>
/// The control plane's persistent state in one checksummed file, rewritten atomically on every
/// change (registry and pool changes are rare; a lost update would lose an endpoint or leak a VM).
/// </summary>
public sealed class StateStore(string path) : ChecksummedJsonState<StateStore.Document>(path, "CPST", 1)
{
    public sealed class Document
    {
        public Dictionary<string, EndpointRecord> Endpoints { get; init; } = new();
        public Dictionary<string, VmRecord> Vms { get; init; } = new();
        public int NextVmNumber { get; set; } = 1;
    }
}
