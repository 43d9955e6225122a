using Storage.Core.Auth;
using Grpc.Core;
using Storage.Proto.Compute;
using ComputeGrpc = Storage.Proto.Compute.ComputeControl;

namespace Storage.Compute;

/// <summary>
/// The agent's control API (proto/compute.proto). Domain failures are exceptions
/// (<see cref="Core.Errors.ServiceException"/>); the host's interceptor turns them into status codes.
/// </summary>
[Allow(Scope.ControlPlane)]
internal sealed class ComputeService(ComputeAgent agent) : ComputeGrpc.ComputeControlBase
{
    public override Task<ComputeStatus> Attach(AttachRequest request, ServerCallContext context) => agent.AttachAsync(request, context.CancellationToken);

    public override Task<ComputeStatus> Detach(DetachRequest request, ServerCallContext context) => agent.DetachAsync(context.CancellationToken);

    public override Task<ComputeStatus> Status(StatusRequest request, ServerCallContext context) => Task.FromResult(agent.Status());

    public override Task<HeartbeatResponse> Heartbeat(HeartbeatRequest request, ServerCallContext context) => Task.FromResult(agent.Heartbeat());

    public override Task<PreparedImage> Prepare(PrepareRequest request, ServerCallContext context) => agent.PrepareAsync(request, context.CancellationToken);
}
