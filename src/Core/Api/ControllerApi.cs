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

/// <summary>Calls other components make to the storage controller.</summary>
public static class ControllerClient
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(10);

    public static async Task<RegisterPageserverResponse> RegisterPageserverAsync(Uri controller, string nodeId, Uri address,
        IEnumerable<Location> onDisk, CancellationToken ct = default)
    {
        using var channel = new GrpcChannel(controller);
        var request = new RegisterPageserverRequest { NodeId = nodeId, Address = address.ToString().TrimEnd('/') };
        request.OnDisk.AddRange(onDisk);
        return await channel.UnaryAsync(ControllerApi.RegisterPageserver, request, new CallOptions(DefaultTimeout, ct));
    }

    /// <summary>Whether <paramref name="nodeId"/> still holds <paramref name="generation"/> of the timeline (the newest one).</summary>
    public static async Task<bool> ValidateGenerationAsync(Uri controller, string nodeId, string tenantId, string timelineId, ulong generation, CancellationToken ct = default)
    {
        using var channel = new GrpcChannel(controller);
        var request = new ValidateGenerationsRequest { NodeId = nodeId };
        request.Locations.Add(new Location { Timeline = PageserverClient.Id(tenantId, timelineId), Mode = LocationMode.Attached, Generation = generation });
        var response = await channel.UnaryAsync(ControllerApi.ValidateGenerations, request, new CallOptions(DefaultTimeout, ct));
        return response.Valid.Count == 1 && response.Valid[0];
    }

    public static async Task<TimelinePlacement> CreateTimelineAsync(Uri controller, CreateTimelineRequest request, CancellationToken ct = default)
    {
        using var channel = new GrpcChannel(controller);
        return await channel.UnaryAsync(ControllerApi.CreateTimeline, request, new CallOptions(TimeSpan.FromMinutes(3), ct));
    }

    public static async Task<TimelinePlacement> GetPlacementAsync(Uri controller, string tenantId, string timelineId, TimeSpan? timeout = null, CancellationToken ct = default)
    {
        using var channel = new GrpcChannel(controller);
        return await channel.UnaryAsync(ControllerApi.GetPlacement, new TimelineRequest { Timeline = PageserverClient.Id(tenantId, timelineId) },
            new CallOptions(timeout ?? DefaultTimeout, ct));
    }

    public static async Task<ControllerStatusResponse> StatusAsync(Uri controller, TimeSpan? timeout = null, CancellationToken ct = default)
    {
        using var channel = new GrpcChannel(controller);
        return await channel.UnaryAsync(ControllerApi.Status, new ControllerStatusRequest(), new CallOptions(timeout ?? DefaultTimeout, ct));
    }
}
