using Storage.Core.Api;
using Storage.Core.Grpc;

namespace Storage.Compute;

/// <summary>Maps the ComputeControl gRPC methods onto the agent.</summary>
internal sealed class ComputeService(ComputeAgent agent)
{
    public void MapTo(GrpcServer server)
    {
        server.MapUnary(ComputeApi.Attach, (request, call) => agent.AttachAsync(request, call.CancellationToken));
        server.MapUnary(ComputeApi.Detach, (_, call) => agent.DetachAsync(call.CancellationToken));
        server.MapUnary(ComputeApi.Status, (_, _) => Task.FromResult(agent.Status()));
        server.MapUnary(ComputeApi.Heartbeat, (_, _) => Task.FromResult(agent.Heartbeat()));
        server.MapUnary(ComputeApi.Prepare, (request, call) => agent.PrepareAsync(request, call.CancellationToken));
    }
}
