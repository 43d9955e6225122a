namespace Storage.ComputeProxy;

/// <summary>Where an endpoint's PostgreSQL listens right now.</summary>
public sealed record ComputeAddress(string Host, int Port, string VmId);

/// <summary>
/// The contract between the wire-protocol proxy (<c>Proxy/</c>) and the control plane
/// (<c>ControlPlane/</c>): the proxy asks where an endpoint's compute is, the control plane wakes
/// it (attaches it to a pooled VM) when it has none, and learns of activity and failures.
/// </summary>
public interface IComputeLocator
{
    /// <summary>
    /// The address of the endpoint's running compute, waking it if needed; waits until it accepts
    /// connections or <paramref name="ct"/> ends. Throws <see cref="UnknownEndpointException"/> for an
    /// endpoint the registry does not know.
    /// </summary>
    Task<ComputeAddress> LocateAsync(string endpointId, CancellationToken ct);

    /// <summary>A connect to <paramref name="address"/> failed: forget it (the VM may have died) before the next try.</summary>
    void Invalidate(string endpointId, ComputeAddress address);

    /// <summary>
    /// Fires when the compute at <paramref name="address"/> is declared dead (crashed, frozen,
    /// partitioned) and fenced: a session relayed to it is over, and its client should reconnect.
    /// </summary>
    CancellationToken Retired(ComputeAddress address) => CancellationToken.None;

    /// <summary>A client session on the endpoint started or ended (for scale to zero).</summary>
    void SessionStarted(string endpointId);
    void SessionEnded(string endpointId);
}

public sealed class UnknownEndpointException(string endpointId)
    : Exception($"endpoint '{endpointId}' does not exist")
{
    public string EndpointId { get; } = endpointId;
}
