using Prometheus;

namespace Storage.Core.Observability;

/// <summary>
/// The base of each service's metrics: its own prometheus-net registry (several services, or test
/// instances of one, may share a process), served at /metrics, and the buckets every latency
/// histogram uses, so p50/p99 read the same way everywhere.
/// </summary>
public abstract class ServiceMetrics
{
    /// <summary>Latency buckets from 50 µs to about 13 s, doubling: fine enough below a millisecond for commit latencies.</summary>
    public static readonly double[] LatencyBuckets = Histogram.ExponentialBuckets(0.00005, 2, 19);

    protected ServiceMetrics() : this(Metrics.NewCustomRegistry()) { }

    /// <summary>Metrics in a registry another part of the same process serves too (one /metrics for the proxy and its control plane).</summary>
    protected ServiceMetrics(CollectorRegistry registry)
    {
        Registry = registry;
        Factory = Metrics.WithCustomRegistry(Registry);
    }

    public CollectorRegistry Registry { get; }
    protected IMetricFactory Factory { get; }

    /// <summary>A latency histogram in seconds with <see cref="LatencyBuckets"/>.</summary>
    protected Histogram Latency(string name, string help, params string[] labelNames) =>
        Factory.CreateHistogram(name, help, new HistogramConfiguration { Buckets = LatencyBuckets, LabelNames = labelNames });

    /// <summary>Runs before every scrape, to refresh gauges from live state.</summary>
    public void OnCollect(Action refresh) => Registry.AddBeforeCollectCallback(refresh);
}
