using Storage.Core.Observability;

namespace Storage.ComputeProxy.Proxy;

/// <summary>The proxy's counters and gauges in the process's <see cref="MetricsRegistry"/>.</summary>
public sealed class ProxyMetrics(MetricsRegistry registry)
{
    public MetricsRegistry Registry { get; } = registry;

    public MetricsRegistry.Cell Accepted { get; } = registry.Counter("proxy_connections_accepted_total", "Client connections accepted");
    public MetricsRegistry.Cell ActiveSessions { get; } = registry.Gauge("proxy_sessions_active", "Sessions being relayed to a compute now");
    public MetricsRegistry.Cell Sessions { get; } = registry.Counter("proxy_sessions_total", "Sessions relayed to a compute");
    public MetricsRegistry.Cell ClientToCompute { get; } = Bytes(registry, "client_to_compute");
    public MetricsRegistry.Cell ComputeToClient { get; } = Bytes(registry, "compute_to_client");
    public MetricsRegistry.Cell ConnectRetries { get; } = registry.Counter("proxy_connect_retries_total", "Connects to a compute retried after Invalidate");

    /// <summary>A connection that ended before it became a session, by reason (protocol, unknown_endpoint, ...).</summary>
    public void Failed(string reason) =>
        Registry.Counter("proxy_connections_failed_total", "Client connections refused or lost before the session started", ("reason", reason)).Add(1);

    /// <summary>A CancelRequest by result: forwarded, unknown_key, failed.</summary>
    public void Cancel(string result) =>
        Registry.Counter("proxy_cancel_requests_total", "CancelRequests received", ("result", result)).Add(1);

    private static MetricsRegistry.Cell Bytes(MetricsRegistry registry, string direction) =>
        registry.Counter("proxy_bytes_relayed_total", "Bytes relayed between clients and computes", ("direction", direction));
}
