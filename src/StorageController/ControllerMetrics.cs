using Prometheus;
using Storage.Core.Observability;

namespace Storage.StorageController;

/// <summary>The storage controller's /metrics.</summary>
public sealed class ControllerMetrics : ServiceMetrics
{
    private readonly Counter _heartbeats, _failovers;
    private readonly Gauge _online, _generation;
    private readonly Histogram _heartbeatSeconds;

    public ControllerMetrics()
    {
        _heartbeats = Factory.CreateCounter("controller_heartbeats_total", "heartbeats answered", ["node_id", "result"]);
        _heartbeatSeconds = Latency("controller_heartbeat_duration_seconds", "time a pageserver took to answer a heartbeat", "node_id");
        _online = Factory.CreateGauge("controller_pageserver_online", "1 while the pageserver answers heartbeats", ["node_id"]);
        _failovers = Factory.CreateCounter("controller_failovers_total", "timelines promoted to their secondary", ["tenant_id", "timeline_id"]);
        _generation = Factory.CreateGauge("controller_generation", "the timeline's current generation", ["tenant_id", "timeline_id"]);
    }

    public void HeartbeatOk(string node, TimeSpan took)
    {
        _heartbeats.WithLabels(node, "ok").Inc();
        _heartbeatSeconds.WithLabels(node).Observe(took.TotalSeconds);
    }

    public void HeartbeatFailed(string node) => _heartbeats.WithLabels(node, "failed").Inc();
    public void Online(string node, bool online) => _online.WithLabels(node).Set(online ? 1 : 0);
    public void Failover(string tenant, string timeline) => _failovers.WithLabels(tenant, timeline).Inc();
    public void Generation(PlacementRecord p) => _generation.WithLabels(p.TenantId, p.TimelineId).Set(p.Generation);
}
