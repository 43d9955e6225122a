using Storage.Core.Observability;

namespace Storage.ComputeProxy.ControlPlane;

/// <summary>The control plane's Prometheus series; gauges are read from the pool and registry at each scrape.</summary>
public sealed class ControlPlaneMetrics
{
    public ControlPlaneMetrics(MetricsRegistry registry)
    {
        Registry = registry;
        Reattaches = registry.Counter("controlplane_reattaches_total", "Endpoints reattached to another VM after theirs died");
        Wakes = registry.Counter("controlplane_wakes_total", "Endpoints attached to a pooled VM (wakes and reattaches)");
        WakeFailures = registry.Counter("controlplane_wake_failures_total", "Attach attempts that failed");
        Suspends = registry.Counter("controlplane_suspends_total", "Endpoints suspended after their idle timeout or on request");
        HeartbeatFailures = registry.Counter("controlplane_heartbeat_failures_total", "Heartbeats that failed or timed out");
        VmDeaths = registry.Counter("controlplane_vm_deaths_total", "VMs found dead (process gone, heartbeats missed, or endpoint lost) and fenced");
        VmStarts = registry.Counter("controlplane_vm_starts_total", "Compute agent processes started for the pool");
        Prepares = registry.Counter("controlplane_vm_prepares_total", "Idle VMs prepared with a new image of an attached endpoint's timeline");
    }

    public MetricsRegistry Registry { get; }
    public MetricsRegistry.Cell Reattaches { get; }
    public MetricsRegistry.Cell Wakes { get; }
    public MetricsRegistry.Cell WakeFailures { get; }
    public MetricsRegistry.Cell Suspends { get; }
    public MetricsRegistry.Cell HeartbeatFailures { get; }
    public MetricsRegistry.Cell VmDeaths { get; }
    public MetricsRegistry.Cell VmStarts { get; }
    public MetricsRegistry.Cell Prepares { get; }

    public void Observe(VmPool pool, EndpointRegistry endpoints)
    {
        var size = Registry.Gauge("controlplane_pool_vms", "Live compute agents in the pool, attached or idle");
        var idle = Registry.Gauge("controlplane_pool_idle_vms", "Idle compute agents ready for a wake");
        var attached = Registry.Gauge("controlplane_attached_endpoints", "Endpoints attached to a VM");
        var prepared = Registry.Gauge("controlplane_pool_prepared_vms", "Idle compute agents holding an image ready for a timeline");
        var total = Registry.Gauge("controlplane_endpoints", "Endpoints in the registry");
        Registry.OnCollect(() =>
        {
            var vms = pool.Snapshot();
            size.Set(vms.Count);
            idle.Set(vms.Count(v => v.State == VmState.Idle));
            prepared.Set(vms.Count(v => v.State == VmState.Idle && v.Prepared is { ImageLsn: > 0 }));
            attached.Set(vms.Count(v => v.State == VmState.Attached));
            total.Set(endpoints.List().Count);
        });
    }
}
