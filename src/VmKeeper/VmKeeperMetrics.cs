using Prometheus;
using Storage.Core.Observability;

namespace Storage.VmKeeper;

public sealed class VmKeeperMetrics : ServiceMetrics
{
    public VmKeeperMetrics()
    {
        Starts = Factory.CreateCounter("vmkeeper_starts_total", "Pool VM containers started again after they were SIGKILLed", ["vm"]);
        CheckFailures = Factory.CreateCounter("vmkeeper_check_failures_total", "Checks of the pool that failed (Docker Engine unreachable or refusing)");
        Members = Factory.CreateGauge("vmkeeper_pool_members", "The pool's VM containers, by Docker state", ["state"]);
    }

    public Counter Starts { get; }
    public Counter CheckFailures { get; }
    public Gauge Members { get; }
}
