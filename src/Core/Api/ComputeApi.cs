using Storage.Core.Grpc;
using Storage.Proto.Compute;

namespace Storage.Core.Api;

/// <summary>The compute agent's gRPC methods (proto/compute.proto), shared by server and clients.</summary>
public static class ComputeApi
{
    public const string Service = "storage.compute.ComputeControl";

    public static readonly GrpcMethod<AttachRequest, ComputeStatus> Attach =
        new(MethodType.Unary, Service, "Attach", AttachRequest.Parser, ComputeStatus.Parser);

    public static readonly GrpcMethod<DetachRequest, ComputeStatus> Detach =
        new(MethodType.Unary, Service, "Detach", DetachRequest.Parser, ComputeStatus.Parser);

    public static readonly GrpcMethod<StatusRequest, ComputeStatus> Status =
        new(MethodType.Unary, Service, "Status", StatusRequest.Parser, ComputeStatus.Parser);

    public static readonly GrpcMethod<HeartbeatRequest, HeartbeatResponse> Heartbeat =
        new(MethodType.Unary, Service, "Heartbeat", HeartbeatRequest.Parser, HeartbeatResponse.Parser);

    public static readonly GrpcMethod<PrepareRequest, PreparedImage> Prepare =
        new(MethodType.Unary, Service, "Prepare", PrepareRequest.Parser, PreparedImage.Parser);
}
