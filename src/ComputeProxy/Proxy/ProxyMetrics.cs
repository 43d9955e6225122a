using Prometheus;
using Storage.Core.Observability;

namespace Storage.ComputeProxy.Proxy;

/// <summary>The proxy's counters, gauges and connect latency, in the process's registry (shared with the control plane).</summary>
public sealed class ProxyMetrics : ServiceMetrics
{
    private readonly Counter _failed, _cancels;

    /// <param name="registry">The registry /metrics serves; null: one of its own (tests).</param>
    public ProxyMetrics(CollectorRegistry? registry = null) : base(registry ?? Metrics.NewCustomRegistry())
    {
        Accepted = Factory.CreateCounter("proxy_connections_accepted_total", "Client connections accepted");
        ActiveSessions = Factory.CreateGauge("proxy_sessions_active", "Sessions being relayed to a compute now");
        Sessions = Factory.CreateCounter("proxy_sessions_total", "Sessions relayed to a compute");
        var bytes = Factory.CreateCounter("proxy_bytes_relayed_total", "Bytes relayed between clients and computes", ["direction"]);
        ClientToCompute = bytes.WithLabels("client_to_compute");
        ComputeToClient = bytes.WithLabels("compute_to_client");
        ConnectRetries = Factory.CreateCounter("proxy_connect_retries_total", "Connects to a compute retried after Invalidate");
        ConnectLatency = Latency("proxy_connect_duration_seconds",
            "Time from a client's startup packet until its compute answered, waking it and retries included (connects that succeeded)");
        _failed = Factory.CreateCounter("proxy_connections_failed_total", "Client connections refused or lost before the session started", ["reason"]);
        _cancels = Factory.CreateCounter("proxy_cancel_requests_total", "CancelRequests received", ["result"]);
    }

    public Counter Accepted { get; }
    public Gauge ActiveSessions { get; }
    public Counter Sessions { get; }
    public Counter.Child ClientToCompute { get; }
    public Counter.Child ComputeToClient { get; }
    public Counter ConnectRetries { get; }
    public Histogram ConnectLatency { get; }

    /// <summary>A connection that ended before it became a session, by reason (protocol, unknown_endpoint, ...).</summary>
    public void Failed(string reason) => _failed.WithLabels(reason).Inc();

    /// <summary>A CancelRequest by result: forwarded, unknown_key, failed.</summary>
    public void Cancel(string result) => _cancels.WithLabels(result).Inc();
}
