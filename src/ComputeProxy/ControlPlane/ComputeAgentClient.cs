using Storage.Core.Api;
using Storage.Core.Grpc;
using Storage.Proto.Compute;

namespace Storage.ComputeProxy.ControlPlane;

/// <summary>
/// The control plane's calls to one compute agent, over one long-lived channel: heartbeats come
/// every half second, and a new HTTP/2 connection for each would cost more than the call.
/// </summary>
public sealed class ComputeAgentClient(Uri address) : IDisposable
{
    private readonly GrpcChannel _channel = new(address);

    public Uri Address { get; } = address;

    public Task<HeartbeatResponse> HeartbeatAsync(TimeSpan timeout, CancellationToken ct = default) =>
        _channel.UnaryAsync(ComputeApi.Heartbeat, new HeartbeatRequest(), new CallOptions(timeout, ct));

    public Task<ComputeStatus> StatusAsync(TimeSpan timeout, CancellationToken ct = default) =>
        _channel.UnaryAsync(ComputeApi.Status, new StatusRequest(), new CallOptions(timeout, ct));

    public Task<ComputeStatus> AttachAsync(AttachRequest request, TimeSpan timeout, CancellationToken ct) =>
        _channel.UnaryAsync(ComputeApi.Attach, request, new CallOptions(timeout, ct));

    public Task<ComputeStatus> DetachAsync(TimeSpan timeout, CancellationToken ct = default) =>
        _channel.UnaryAsync(ComputeApi.Detach, new DetachRequest(), new CallOptions(timeout, ct));

    public Task<PreparedImage> PrepareAsync(PrepareRequest request, TimeSpan timeout, CancellationToken ct) =>
        _channel.UnaryAsync(ComputeApi.Prepare, request, new CallOptions(timeout, ct));

    public void Dispose() => _channel.Dispose();
}
