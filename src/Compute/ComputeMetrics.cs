using Prometheus;
using Storage.Core.Observability;

namespace Storage.Compute;

/// <summary>The compute agent's /metrics: attaches, restarts, commit and feedback latency, state and LSN gauges.</summary>
internal sealed class ComputeMetrics : ServiceMetrics
{
    private readonly Counter _attaches, _restarts, _postgresExits;
    private readonly Counter _quorumSeconds, _quorumRounds, _feedbackSeconds, _feedbacks, _receiveSeconds, _receives, _attachPhaseSeconds;
    private readonly Histogram _quorumLatency, _feedbackLatency, _attachPhases;

    public ComputeMetrics()
    {
        _attaches = Factory.CreateCounter("compute_attach_total", "Attach requests started");
        _restarts = Factory.CreateCounter("compute_postgres_restarts_total", "PostgreSQL restarts from a fresh basebackup after a crash");
        _postgresExits = Factory.CreateCounter("compute_postgres_unexpected_exits_total", "Times PostgreSQL exited without being asked to");
        _quorumLatency = Latency("compute_quorum_commit_duration_seconds", "Time from handing a WAL batch to the proposer until the quorum committed it");
        _quorumSeconds = Factory.CreateCounter("compute_quorum_commit_seconds_total", "Time from handing a WAL batch to the proposer until the quorum committed it");
        _quorumRounds = Factory.CreateCounter("compute_quorum_commits_total", "WAL batches committed by the quorum");
        _feedbackLatency = Latency("compute_feedback_duration_seconds", "Time from a commit advance until PostgreSQL was sent the new flush position");
        _feedbackSeconds = Factory.CreateCounter("compute_feedback_seconds_total", "Time from a commit advance until PostgreSQL was sent the new flush position");
        _feedbacks = Factory.CreateCounter("compute_feedback_messages_total", "Flush positions sent to PostgreSQL");
        _receiveSeconds = Factory.CreateCounter("compute_wal_receive_delay_seconds_total", "Time from the walsender sending WAL (its clock) until the walproposer received it");
        _receives = Factory.CreateCounter("compute_wal_messages_total", "WAL messages received from PostgreSQL");
        _attachPhases = Latency("compute_attach_phase_duration_seconds", "Time spent in each phase of the attaches that succeeded", ["phase"]);
        _attachPhaseSeconds = Factory.CreateCounter("compute_attach_phase_seconds_total", "Time spent in each phase of the attaches that succeeded", ["phase"]);
    }

    public void WalReceived(TimeSpan delay)
    {
        _receiveSeconds.Inc(Math.Max(0, delay.TotalSeconds));
        _receives.Inc();
    }

    public void QuorumCommitted(TimeSpan took)
    {
        _quorumLatency.Observe(took.TotalSeconds);
        _quorumSeconds.Inc(took.TotalSeconds);
        _quorumRounds.Inc();
    }

    public void FeedbackSent(TimeSpan took)
    {
        _feedbackLatency.Observe(took.TotalSeconds);
        _feedbackSeconds.Inc(took.TotalSeconds);
        _feedbacks.Inc();
    }

    public void Attached() => _attaches.Inc();

    /// <summary>Each phase of a finished attach, into the histogram and the compute_attach_phase_seconds_total{phase} sums.</summary>
    public void AttachPhases(PhaseClock clock)
    {
        foreach (var (phase, took) in clock.Phases)
        {
            _attachPhases.WithLabels(phase).Observe(took.TotalSeconds);
            _attachPhaseSeconds.WithLabels(phase).Inc(took.TotalSeconds);
        }
    }

    public void PostgresExited() => _postgresExits.Inc();
    public void Restarted() => _restarts.Inc();

    /// <summary>State and LSN gauges, read from the agent whenever /metrics is scraped.</summary>
    public void Observe(ComputeAgent agent)
    {
        var state = Factory.CreateGauge("compute_state", "1 for the agent's current state", ["state"]);
        var commit = Factory.CreateGauge("compute_commit_lsn", "Quorum commit LSN reported to PostgreSQL");
        var streamed = Factory.CreateGauge("compute_streamed_lsn", "End of the WAL handed to the safekeepers");
        var term = Factory.CreateGauge("compute_term", "The walproposer's term");
        OnCollect(() =>
        {
            var status = agent.Status();
            foreach (var name in Enum.GetNames<Proto.Compute.ComputeState>())
                state.WithLabels(name).Set(name == status.State.ToString() ? 1 : 0);
            commit.Set(status.CommitLsn);
            streamed.Set(status.StreamedLsn);
            term.Set(status.Term);
        });
    }
}
