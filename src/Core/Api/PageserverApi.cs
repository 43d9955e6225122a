using Storage.Core.Grpc;
using Storage.Proto.Pageserver;

namespace Storage.Core.Api;

/// <summary>The pageserver's gRPC methods (proto/pageserver.proto), shared by server and clients.</summary>
public static class PageserverApi
{
    public const string Service = "storage.pageserver.Pageserver";

    public static readonly GrpcMethod<CreateTimelineRequest, TimelineInfo> CreateTimeline =
        new(MethodType.Unary, Service, "CreateTimeline", CreateTimelineRequest.Parser, TimelineInfo.Parser);

    public static readonly GrpcMethod<TimelineRequest, TimelineInfo> GetTimeline =
        new(MethodType.Unary, Service, "GetTimeline", TimelineRequest.Parser, TimelineInfo.Parser);

    public static readonly GrpcMethod<ListTimelinesRequest, ListTimelinesResponse> ListTimelines =
        new(MethodType.Unary, Service, "ListTimelines", ListTimelinesRequest.Parser, ListTimelinesResponse.Parser);

    public static readonly GrpcMethod<BasebackupRequest, BasebackupChunk> Basebackup =
        new(MethodType.ServerStreaming, Service, "Basebackup", BasebackupRequest.Parser, BasebackupChunk.Parser);

    public static readonly GrpcMethod<LsnForTimestampRequest, LsnForTimestampResponse> LsnForTimestamp =
        new(MethodType.Unary, Service, "LsnForTimestamp", LsnForTimestampRequest.Parser, LsnForTimestampResponse.Parser);

    public static readonly GrpcMethod<LocationRequest, TimelineInfo> SetLocation =
        new(MethodType.Unary, Service, "SetLocation", LocationRequest.Parser, TimelineInfo.Parser);
}
