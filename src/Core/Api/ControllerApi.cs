using Storage.Core.Grpc;
using Storage.Proto.Controller;
using Storage.Proto.Pageserver;

namespace Storage.Core.Api;

/// <summary>The storage controller's gRPC methods (proto/controller.proto), shared by server and clients.</summary>
public static class ControllerApi
{
    public const string Service = "storage.controller.StorageController";

    public static readonly GrpcMethod<RegisterPageserverRequest, RegisterPageserverResponse> RegisterPageserver =
        new(MethodType.Unary, Service, "RegisterPageserver", RegisterPageserverRequest.Parser, RegisterPageserverResponse.Parser);

    public static readonly GrpcMethod<ValidateGenerationsRequest, ValidateGenerationsResponse> ValidateGenerations =
        new(MethodType.Unary, Service, "ValidateGenerations", ValidateGenerationsRequest.Parser, ValidateGenerationsResponse.Parser);

    public static readonly GrpcMethod<CreateTimelineRequest, TimelinePlacement> CreateTimeline =
        new(MethodType.Unary, Service, "CreateTimeline", CreateTimelineRequest.Parser, TimelinePlacement.Parser);

    public static readonly GrpcMethod<TimelineRequest, TimelinePlacement> GetPlacement =
        new(MethodType.Unary, Service, "GetPlacement", TimelineRequest.Parser, TimelinePlacement.Parser);

    public static readonly GrpcMethod<ControllerStatusRequest, ControllerStatusResponse> Status =
        new(MethodType.Unary, Service, "Status", ControllerStatusRequest.Parser, ControllerStatusResponse.Parser);
}
