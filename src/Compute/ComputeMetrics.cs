using Storage.Core.Observability;

namespace Storage.Compute;

/// <summary>The compute agent's Prometheus metrics.</summary>
internal sealed class ComputeMetrics(MetricsRegistry registry)
{
    private readonly MetricsRegistry.Cell _attaches = registry.Counter("compute_attach_total", "Attach requests started");
    private readonly MetricsRegistry.Cell _restarts = registry.Counter("compute_postgres_restarts_total", "PostgreSQL restarts from a fresh basebackup after a crash");
    private readonly MetricsRegistry.Cell _postgresExits = registry.Counter("compute_postgres_unexpected_exits_total", "Times PostgreSQL exited without being asked to");

    private readonly MetricsRegistry.Cell _quorumSeconds = registry.Counter("compute_quorum_commit_seconds_total", "Time from handing a WAL batch to the proposer until the quorum committed it");
    private readonly MetricsRegistry.Cell _quorumRounds = registry.Counter("compute_quorum_commits_total", "WAL batches committed by the quorum");
    // The same time per batch in buckets, for percentiles (Prometheus: histogram_quantile); 0.5 ms to 10 s.
    private readonly MetricsRegistry.HistogramCell _quorumLatency = registry.Histogram("compute_quorum_commit_duration_seconds",
        "Time from handing a WAL batch to the proposer until the quorum committed it", [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10]);
    private readonly MetricsRegistry.Cell _feedbackSeconds = registry.Counter("compute_feedback_seconds_total", "Time from a commit advance until PostgreSQL was sent the new flush position");
    private readonly MetricsRegistry.Cell _feedbacks = registry.Counter("compute_feedback_messages_total", "Flush positions sent to PostgreSQL");

    public MetricsRegistry Registry { get; } = registry;

    private readonly MetricsRegistry.Cell _receiveSeconds = registry.Counter("compute_wal_receive_delay_seconds_total", "Time from the walsender sending WAL (its clock) until the walproposer received it");
    private readonly MetricsRegistry.Cell _receives = registry.Counter("compute_wal_messages_total", "WAL messages received from PostgreSQL");

    public void WalReceived(TimeSpan delay) { _receiveSeconds.Add(Math.Max(0, delay.TotalSeconds)); _receives.Add(1); }

    public void QuorumCommitted(TimeSpan took) { _quorumSeconds.Add(took.TotalSeconds); _quorumRounds.Add(1); _quorumLatency.Observe(took.TotalSeconds); }
    public void FeedbackSent(TimeSpan took) { _feedbackSeconds.Add(took.TotalSeconds); _feedbacks.Add(1); }

    public void Attached() => _attaches.Add(1);

    /// <summary>Adds each phase of a finished attach to compute_attach_phase_seconds_total{phase}.</summary>
    public void AttachPhases(PhaseClock clock)
    {
        foreach (var (phase, took) in clock.Phases)
            Registry.Counter("compute_attach_phase_seconds_total", "Time spent in each phase of the attaches that succeeded", ("phase", phase)).Add(took.TotalSeconds);
    }
    public void PostgresExited() => _postgresExits.Add(1);
    public void Restarted() => _restarts.Add(1);

    /// <summary>State and LSN gauges, read from the agent whenever /metrics is scraped.</summary>
    public void Observe(ComputeAgent agent)
    {
        Registry.OnCollect(() =>
        {
            var status = agent.Status();
            foreach (var name in Enum.GetNames<Proto.Compute.ComputeState>())
                Registry.Gauge("compute_state", "1 for the agent's current state", ("state", name)).Set(name == status.State.ToString() ? 1 : 0);
            Registry.Gauge("compute_commit_lsn", "Quorum commit LSN reported to PostgreSQL").Set(status.CommitLsn);
            Registry.Gauge("compute_streamed_lsn", "End of the WAL handed to the safekeepers").Set(status.StreamedLsn);
            Registry.Gauge("compute_term", "The walproposer's term").Set(status.Term);
        });
    }
}
