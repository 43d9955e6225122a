using Storage.Core.Rpc;
using Storage.Proto.Compute;
using ComputeGrpc = Storage.Proto.Compute.ComputeControl;

namespace Storage.Core.Api;

/// <summary>
/// Calls to a compute agent (the control plane's heartbeats, attaches and prepares; storagectl's
/// status; the agent's own warm-up), over the process's one channel per agent.
/// </summary>
public static class ComputeClient
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(10);

    /// <summary>The generated client on the shared channel to <paramref name="agent"/>.</summary>
    public static ComputeGrpc.ComputeControlClient For(Uri agent) => new(GrpcChannels.For(agent));

    private static DateTime Deadline(TimeSpan? timeout) => DateTime.UtcNow + (timeout ?? DefaultTimeout);

    public static async Task<HeartbeatResponse> HeartbeatAsync(Uri agent, TimeSpan? timeout = null, CancellationToken ct = default) =>
        await For(agent).HeartbeatAsync(new HeartbeatRequest(), deadline: Deadline(timeout), cancellationToken: ct);

    public static async Task<ComputeStatus> StatusAsync(Uri agent, TimeSpan? timeout = null, CancellationToken ct = default) =>
        await For(agent).StatusAsync(new StatusRequest(), deadline: Deadline(timeout), cancellationToken: ct);

    public static async Task<ComputeStatus> AttachAsync(Uri agent, AttachRequest request, TimeSpan timeout, CancellationToken ct = default) =>
        await For(agent).AttachAsync(request, deadline: Deadline(timeout), cancellationToken: ct);

    public static async Task<ComputeStatus> DetachAsync(Uri agent, TimeSpan timeout, CancellationToken ct = default) =>
        await For(agent).DetachAsync(new DetachRequest(), deadline: Deadline(timeout), cancellationToken: ct);

    public static async Task<PreparedImage> PrepareAsync(Uri agent, PrepareRequest request, TimeSpan timeout, CancellationToken ct = default) =>
        await For(agent).PrepareAsync(request, deadline: Deadline(timeout), cancellationToken: ct);
}
