using Storage.Core.Grpc;
using Storage.Proto.Safekeeper;

namespace Storage.Core.Api;

/// <summary>The safekeeper's gRPC methods (proto/safekeeper.proto), shared by server and clients.</summary>
public static class SafekeeperApi
{
    public const string Service = "storage.safekeeper.Safekeeper";

    public static readonly GrpcMethod<ProposerMessage, AcceptorMessage> ProposerStream =
        new(MethodType.DuplexStreaming, Service, "ProposerStream", ProposerMessage.Parser, AcceptorMessage.Parser);

    public static readonly GrpcMethod<CreateTimelineRequest, TimelineStatus> CreateTimeline =
        new(MethodType.Unary, Service, "CreateTimeline", CreateTimelineRequest.Parser, TimelineStatus.Parser);

    public static readonly GrpcMethod<TimelineStatusRequest, TimelineStatus> GetTimelineStatus =
        new(MethodType.Unary, Service, "GetTimelineStatus", TimelineStatusRequest.Parser, TimelineStatus.Parser);

    public static readonly GrpcMethod<ListTimelinesRequest, ListTimelinesResponse> ListTimelines =
        new(MethodType.Unary, Service, "ListTimelines", ListTimelinesRequest.Parser, ListTimelinesResponse.Parser);

    public static readonly GrpcMethod<ReadWalRequest, WalChunk> ReadWal =
        new(MethodType.ServerStreaming, Service, "ReadWal", ReadWalRequest.Parser, WalChunk.Parser);

    public static readonly GrpcMethod<PageserverFeedback, TimelineStatus> ReportPageserverFeedback =
        new(MethodType.Unary, Service, "ReportPageserverFeedback", PageserverFeedback.Parser, TimelineStatus.Parser);
}
