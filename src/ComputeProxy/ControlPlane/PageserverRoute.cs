using Microsoft.Extensions.Logging;
using Storage.Core.Api;

namespace Storage.ComputeProxy.ControlPlane;

/// <summary>
/// Which pageservers an attach asks for its basebackup, in order: with a storage controller, the
/// timeline's attached pageserver first (it moves on a failover), then its secondary, then the
/// configured ones; the compute skips any that do not hold the timeline attached.
/// </summary>
public sealed class PageserverRoute(ControlPlaneOptions options, ILogger log)
{
    private static readonly TimeSpan ControllerTimeout = TimeSpan.FromSeconds(2);

    public async Task<IReadOnlyList<Uri>> ForTimelineAsync(string tenantId, string timelineId, CancellationToken ct)
    {
        if (options.Controller is not { } controller) return options.Pageservers;
        var ordered = new List<Uri>();
        try
        {
            var placement = await ControllerClient.GetPlacementAsync(controller, tenantId, timelineId, ControllerTimeout, ct);
            foreach (var address in new[] { placement.AttachedAddress, placement.SecondaryAddress })
                if (Uri.TryCreate(address, UriKind.Absolute, out var uri)) ordered.Add(uri);
        }
        catch (Exception e) when (!ct.IsCancellationRequested)
        {
            log.LogWarning("storage controller {Controller} did not say where {TenantId}/{TimelineId} is attached; trying every pageserver: {Error}",
                controller, tenantId, timelineId, e.Message);
        }
        ordered.AddRange(options.Pageservers.Where(p => !ordered.Any(o => SameAddress(o, p))));
        return ordered;
    }

    private static bool SameAddress(Uri a, Uri b) => a.Host == b.Host && a.Port == b.Port;
}
