using Prometheus;
using Storage.Core.Observability;

namespace Storage.ComputeProxy.ControlPlane;

/// <summary>The control plane's Prometheus series; gauges are read from the pool and registry at each scrape.</summary>
public sealed class ControlPlaneMetrics : ServiceMetrics
{
    /// <param name="registry">The registry /metrics serves (shared with the proxy); null: one of its own.</param>
    public ControlPlaneMetrics(CollectorRegistry? registry = null) : base(registry ?? Metrics.NewCustomRegistry())
    {
        Reattaches = Factory.CreateCounter("controlplane_reattaches_total", "Endpoints reattached to another VM after theirs died");
        Wakes = Factory.CreateCounter("controlplane_wakes_total", "Endpoints attached to a pooled VM (wakes and reattaches)");
        WakeFailures = Factory.CreateCounter("controlplane_wake_failures_total", "Attach attempts that failed");
        Suspends = Factory.CreateCounter("controlplane_suspends_total", "Endpoints suspended after their idle timeout or on request");
        HeartbeatFailures = Factory.CreateCounter("controlplane_heartbeat_failures_total", "Heartbeats that failed or timed out");
        VmDeaths = Factory.CreateCounter("controlplane_vm_deaths_total", "VMs found dead (process gone, heartbeats missed, or endpoint lost) and fenced");
        VmStarts = Factory.CreateCounter("controlplane_vm_starts_total", "Compute agent processes started for the pool");
        Prepares = Factory.CreateCounter("controlplane_vm_prepares_total", "Idle VMs prepared with a new image of an attached endpoint's timeline");
        WakeLatency = Latency("controlplane_wake_duration_seconds", "Time to attach an endpoint to a pooled VM until its PostgreSQL accepts connections (attaches that succeeded)");
    }

    public Counter Reattaches { get; }
    public Counter Wakes { get; }
    public Counter WakeFailures { get; }
    public Counter Suspends { get; }
    public Counter HeartbeatFailures { get; }
    public Counter VmDeaths { get; }
    public Counter VmStarts { get; }
    public Counter Prepares { get; }
    public Histogram WakeLatency { get; }

    public void Observe(VmPool pool, EndpointRegistry endpoints)
    {
        var size = Factory.CreateGauge("controlplane_pool_vms", "Live compute agents in the pool, attached or idle");
        var idle = Factory.CreateGauge("controlplane_pool_idle_vms", "Idle compute agents ready for a wake");
        var attached = Factory.CreateGauge("controlplane_attached_endpoints", "Endpoints attached to a VM");
        var prepared = Factory.CreateGauge("controlplane_pool_prepared_vms", "Idle compute agents holding an image ready for a timeline");
        var total = Factory.CreateGauge("controlplane_endpoints", "Endpoints in the registry");
        OnCollect(() =>
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
