using Storage.Core.Observability;

namespace Storage.Compute;

/// <summary>The compute agent's Prometheus metrics.</summary>
internal sealed class ComputeMetrics(MetricsRegistry registry)
{
    private readonly MetricsRegistry.Cell _attaches = registry.Counter("compute_attach_total", "Attach requests started");
    private readonly MetricsRegistry.Cell _postgresExits = registry.Counter("compute_postgres_unexpected_exits_total", "Times PostgreSQL exited without being asked to");

    public MetricsRegistry Registry { get; } = registry;

    public void Attached() => _attaches.Add(1);
    public void PostgresExited() => _postgresExits.Add(1);

    /// <summary>State and LSN gauges, read from the agent whenever /metrics is scraped.</summary>
    public void Observe(ComputeAgent agent)
    {
        var state = Registry.Gauge("compute_state", "1 for the agent's current state");
        Registry.OnCollect(() =>
        {
            var status = agent.Status();
            foreach (var name in Enum.GetNames<Proto.Compute.ComputeState>())
                Registry.Gauge("compute_state", "1 for the agent's current state", ("state", name)).Set(name == status.State.ToString() ? 1 : 0);
            Registry.Gauge("compute_commit_lsn", "Quorum commit LSN reported to PostgreSQL").Set(status.CommitLsn);
            Registry.Gauge("compute_streamed_lsn", "End of the WAL handed to the safekeepers").Set(status.StreamedLsn);
            Registry.Gauge("compute_term", "The walproposer's term").Set(status.Term);
        });
        _ = state;
    }
}
