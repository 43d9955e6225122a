using Microsoft.Extensions.Logging;
using Storage.Core.Api;
using Storage.Core.Grpc;
using Storage.Proto.Controller;
using Storage.Proto.Pageserver;

namespace Storage.StorageController;

/// <summary>The storage controller's gRPC API (proto/controller.proto) over the placement book.</summary>
public sealed class ControllerService(PlacementBook book, NodeHealth health, ControllerMetrics metrics, ILogger log)
{
    private readonly SemaphoreSlim _createLock = new(1, 1);

    public void MapTo(GrpcServer server)
    {
        server.MapUnary(ControllerApi.RegisterPageserver, (request, _) => Task.FromResult(Register(request)));
        server.MapUnary(ControllerApi.ValidateGenerations, (request, _) => Task.FromResult(Validate(request)));
        server.MapUnary(ControllerApi.CreateTimeline, (request, context) => CreateTimelineAsync(request, context.CancellationToken));
        server.MapUnary(ControllerApi.GetPlacement, (request, _) => Task.FromResult(
            ToMessage(book.Get(request.Timeline?.TenantId ?? "", request.Timeline?.TimelineId ?? ""))));
        server.MapUnary(ControllerApi.Status, (_, _) => Task.FromResult(Status()));
    }

    private RegisterPageserverResponse Register(RegisterPageserverRequest request)
    {
        var placements = book.Register(request.NodeId, request.Address,
            request.OnDisk.Where(l => l.Timeline is not null).Select(l => (l.Timeline.TenantId, l.Timeline.TimelineId, l.Generation)));
        health.Registered(request.NodeId);
        health.Watch();
        var response = new RegisterPageserverResponse();
        foreach (var p in placements)
        {
            bool attached = p.Attached == request.NodeId;
            response.Locations.Add(new Location
            {
                Timeline = PageserverClient.Id(p.TenantId, p.TimelineId),
                Mode = attached ? LocationMode.Attached : LocationMode.Secondary,
                Generation = attached ? p.Generation : 0,
            });
            if (attached) metrics.Generation(p);
        }
        log.LogInformation("pageserver {NodeId} registered at {Address}: attached {Attached}, secondary {Secondary}",
            request.NodeId, request.Address, response.Locations.Count(l => l.Mode == LocationMode.Attached), response.Locations.Count(l => l.Mode == LocationMode.Secondary));
        return response;
    }

    private ValidateGenerationsResponse Validate(ValidateGenerationsRequest request)
    {
        var response = new ValidateGenerationsResponse();
        foreach (var location in request.Locations)
        {
            bool valid = location.Timeline is { } t && book.IsCurrent(request.NodeId, t.TenantId, t.TimelineId, location.Generation);
            if (!valid) log.LogWarning("pageserver {NodeId} holds a stale generation {Generation} of {TenantId}/{TimelineId}: its deletions are refused",
                request.NodeId, location.Generation, location.Timeline?.TenantId, location.Timeline?.TimelineId);
            response.Valid.Add(valid);
        }
        return response;
    }

    /// <summary>Places the timeline, creates it on the attached pageserver with generation 1; the reconciler adds the secondary.</summary>
    private async Task<TimelinePlacement> CreateTimelineAsync(CreateTimelineRequest request, CancellationToken ct)
    {
        if (request.Timeline is null) throw new RpcException(GrpcStatusCode.InvalidArgument, "timeline is missing");
        await _createLock.WaitAsync(ct);
        try
        {
            var ancestor = string.IsNullOrEmpty(request.AncestorTimelineId) ? null : book.Get(request.Timeline.TenantId, request.AncestorTimelineId);
            var placement = book.Place(request.Timeline.TenantId, request.Timeline.TimelineId, health.OnlineNodes(), ancestor);
            var node = book.Node(placement.Attached)!;
            var create = request.Clone();
            create.Generation = placement.Generation;
            try
            {
                var info = await PageserverClient.CreateTimelineAsync(new Uri(node.Address), create, ct);
                health.Observed(node.Id, info);
                book.Created(placement);
            }
            catch
            {
                book.Remove(placement);
                throw;
            }
            metrics.Generation(placement);
            log.LogInformation("timeline {TenantId}/{TimelineId} created, attached to {NodeId} (generation {Generation}), secondary {Secondary}",
                placement.TenantId, placement.TimelineId, placement.Attached, placement.Generation, placement.Secondary ?? "none");
            return ToMessage(placement);
        }
        finally { _createLock.Release(); }
    }

    private ControllerStatusResponse Status()
    {
        var response = new ControllerStatusResponse { Failovers = book.Failovers };
        foreach (var node in book.Nodes)
            response.Nodes.Add(new PageserverNode
            {
                NodeId = node.Id, Address = node.Address, Online = health.IsOnline(node.Id),
                LastHeartbeatUnixMillis = health.Last(node.Id) is { } h ? new DateTimeOffset(h.AtUtc).ToUnixTimeMilliseconds() : 0,
            });
        response.Placements.AddRange(book.Placements.Select(ToMessage));
        return response;
    }

    private TimelinePlacement ToMessage(PlacementRecord p) => new()
    {
        Timeline = PageserverClient.Id(p.TenantId, p.TimelineId),
        AttachedNode = p.Attached,
        AttachedAddress = book.Node(p.Attached)?.Address ?? "",
        SecondaryNode = p.Secondary ?? "",
        SecondaryAddress = p.Secondary is { } s ? book.Node(s)?.Address ?? "" : "",
        Generation = p.Generation,
    };
}
