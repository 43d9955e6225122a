using Storage.Proto.Compute;

namespace Storage.Compute;

/// <summary>What the agent reports: status and heartbeat.</summary>
internal sealed partial class ComputeAgent
{
    public ComputeStatus Status()
    {
        lock (_lock)
        {
            var status = new ComputeStatus
            {
                VmId = _options.VmId,
                State = _state,
                Reason = _reason,
                TenantId = _request?.TenantId ?? "",
                TimelineId = _request?.TimelineId ?? "",
                EndpointId = _request?.Endpoint?.EndpointId ?? "",
                PostgresPort = _options.PostgresPort,
                PostgresPid = _postgres is { HasExited: false } pg ? pg.ProcessId : 0,
                StartLsn = _startLsn.Value,
                AttachCount = _attachCount,
                RestartCount = _restarts,
                LastCrash = _lastCrash,
                Prepared = _prepared.Current,
                BuiltOnImageLsn = _builtOn.End.Value,
                BuiltOnPreparedImage = _builtOnPrepared,
                RetentionLsn = _slotAdvancedTo.Value,
                RetentionNote = _retentionNote,
            };
            if (_proposer is { } proposer)
            {
                status.Term = proposer.Term;
                status.CommitLsn = proposer.CommitLsn.Value;
                status.SafekeeperFlushLsns.AddRange(proposer.SafekeeperFlushLsns.Select(l => l.Value));
            }
            if (_streamer is { } streamer) status.StreamedLsn = streamer.StreamedUpTo.Value;
            if (_state == ComputeState.Running && _request?.Endpoint is { } endpoint)
                status.ConnectionString = $"postgresql://{Uri.EscapeDataString(endpoint.RoleName)}:{Uri.EscapeDataString(endpoint.RolePassword)}@127.0.0.1:{_options.PostgresPort}/postgres";
            return status;
        }
    }

    public HeartbeatResponse Heartbeat()
    {
        lock (_lock)
            return new HeartbeatResponse
            {
                VmId = _options.VmId,
                State = _state,
                Reason = _reason,
                EndpointId = _request?.Endpoint?.EndpointId ?? "",
                CommitLsn = _proposer?.CommitLsn.Value ?? 0,
                RestartCount = _restarts,
                LastCrash = _lastCrash,
                Prepared = _prepared.Current,
            };
    }
}
