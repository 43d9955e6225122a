using Storage.Core.Rpc;
using Storage.Proto.Controller;
using Storage.Proto.Pageserver;
using ControllerGrpc = Storage.Proto.Controller.StorageController;

namespace Storage.Core.Api;

/// <summary>
/// Calls other components make to the storage controller, one place for building their requests,
/// over the process's one channel to it.
/// </summary>
public static class ControllerClient
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(10);

    /// <summary>The generated client on the shared channel to <paramref name="controller"/>.</summary>
    public static ControllerGrpc.StorageControllerClient For(Uri controller, string? token = null) => new(GrpcChannels.For(controller, token));

    private static DateTime Deadline(TimeSpan? timeout) => DateTime.UtcNow + (timeout ?? DefaultTimeout);

    public static async Task<RegisterPageserverResponse> RegisterPageserverAsync(Uri controller, string nodeId, Uri address,
        IEnumerable<Location> onDisk, CancellationToken ct = default)
    {
        var request = new RegisterPageserverRequest { NodeId = nodeId, Address = address.ToString().TrimEnd('/') };
        request.OnDisk.AddRange(onDisk);
        return await For(controller).RegisterPageserverAsync(request, deadline: Deadline(null), cancellationToken: ct);
    }

    /// <summary>Whether <paramref name="nodeId"/> still holds <paramref name="generation"/> of the timeline (the newest one).</summary>
    public static async Task<bool> ValidateGenerationAsync(Uri controller, string nodeId, string tenantId, string timelineId, ulong generation, CancellationToken ct = default)
    {
        var request = new ValidateGenerationsRequest { NodeId = nodeId };
        request.Locations.Add(new Location { Timeline = PageserverClient.Id(tenantId, timelineId), Mode = LocationMode.Attached, Generation = generation });
        var response = await For(controller).ValidateGenerationsAsync(request, deadline: Deadline(null), cancellationToken: ct);
        return response.Valid.Count == 1 && response.Valid[0];
    }

    /// <summary>Places the timeline and creates it on its attached pageserver (as long as <see cref="PageserverClient.CreateTimeout"/>).</summary>
    public static async Task<TimelinePlacement> CreateTimelineAsync(Uri controller, CreateTimelineRequest request, CancellationToken ct = default) =>
        await For(controller).CreateTimelineAsync(request, deadline: Deadline(PageserverClient.CreateTimeout), cancellationToken: ct);

    public static async Task<TimelinePlacement> GetPlacementAsync(Uri controller, string tenantId, string timelineId, TimeSpan? timeout = null, CancellationToken ct = default) =>
        await For(controller).GetPlacementAsync(new TimelineRequest { Timeline = PageserverClient.Id(tenantId, timelineId) },
            deadline: Deadline(timeout), cancellationToken: ct);

    public static async Task<ControllerStatusResponse> StatusAsync(Uri controller, TimeSpan? timeout = null, CancellationToken ct = default, string? token = null) =>
        await For(controller, token).StatusAsync(new ControllerStatusRequest(), deadline: Deadline(timeout), cancellationToken: ct);
}
