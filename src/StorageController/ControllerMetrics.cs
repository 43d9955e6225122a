using Storage.Core.Observability;

namespace Storage.StorageController;

/// <summary>The storage controller's /metrics.</summary>
public sealed class ControllerMetrics(MetricsRegistry registry)
{
    public MetricsRegistry Registry { get; } = registry;

    public void HeartbeatOk(string node) => Registry.Counter("controller_heartbeats_total", "heartbeats answered", [("node_id", node), ("result", "ok")]).Add(1);
    public void HeartbeatFailed(string node) => Registry.Counter("controller_heartbeats_total", "heartbeats answered", [("node_id", node), ("result", "failed")]).Add(1);
    public void Online(string node, bool online) => Registry.Gauge("controller_pageserver_online", "1 while the pageserver answers heartbeats", [("node_id", node)]).Set(online ? 1 : 0);
    public void Failover(string tenant, string timeline) => Registry.Counter("controller_failovers_total", "timelines promoted to their secondary", [("tenant_id", tenant), ("timeline_id", timeline)]).Add(1);
    public void Generation(PlacementRecord p) => Registry.Gauge("controller_generation", "the timeline's current generation", [("tenant_id", p.TenantId), ("timeline_id", p.TimelineId)]).Set(p.Generation);
}
