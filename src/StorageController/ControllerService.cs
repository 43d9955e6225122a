using Grpc.Core;
using Storage.Core.Auth;
using Storage.Core.Rpc;
using Microsoft.Extensions.Logging;
using Storage.Core.Api;
using Storage.Core.Errors;
using Storage.Proto.Controller;
using Storage.Proto.Pageserver;
using ControllerGrpc = Storage.Proto.Controller.StorageController;

namespace Storage.StorageController;

/// <summary>
/// The storage controller's gRPC API (proto/controller.proto) over the placement book. One instance
/// serves every call (creations are serialised). Domain failures are exceptions
/// (<see cref="ServiceException"/>); the host's interceptor turns them into status codes.
/// </summary>
public sealed class ControllerService(PlacementBook book, NodeHealth health, ControllerMetrics metrics, ILogger<ControllerService> log)
    : ControllerGrpc.StorageControllerBase
{
    private readonly SemaphoreSlim _createLock = new(1, 1);

    [Allow(Scope.Pageserver)]
    public override Task<RegisterPageserverResponse> RegisterPageserver(RegisterPageserverRequest request, ServerCallContext context)
    {
        context.RequireSubject(request.NodeId); // a pageserver registers only as itself: nobody else can claim its timelines
        return Task.FromResult(Register(request));
    }

    [Allow(Scope.Pageserver)]
    public override Task<ValidateGenerationsResponse> ValidateGenerations(ValidateGenerationsRequest request, ServerCallContext context)
    {
        context.RequireSubject(request.NodeId);
        return Task.FromResult(Validate(request));
    }

    [Allow(Scope.ControlPlane)]
    public override Task<TimelinePlacement> CreateTimeline(CreateTimelineRequest request, ServerCallContext context) =>
        CreateTimelineAsync(request, context.CancellationToken);

    [Allow(Scope.ControlPlane, Scope.Compute)]
    public override Task<TimelinePlacement> GetPlacement(TimelineRequest request, ServerCallContext context)
    {
        context.RequireTenant(request.Timeline?.TenantId ?? "");
        return Task.FromResult(ToMessage(book.Get(request.Timeline?.TenantId ?? "", request.Timeline?.TimelineId ?? "")));
    }

    [Allow(Scope.ControlPlane)]
    public override Task<ControllerStatusResponse> Status(ControllerStatusRequest request, ServerCallContext context) => Task.FromResult(Status());

    private RegisterPageserverResponse Register(RegisterPageserverRequest request)
    {
        var placements = book.Register(request.NodeId, request.Address,
            request.OnDisk.Where(l => l.Timeline is not null).Select(l => (l.Timeline.TenantId, l.Timeline.TimelineId, l.Generation)));
        health.Registered(request.NodeId);
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
        if (request.Timeline is null) throw new InvalidRequestException("timeline is missing");
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
                LastHeartbeatUnixMillis = health.Last(node.Id) is { } h ? h.At.ToUnixTimeMilliseconds() : 0,
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
