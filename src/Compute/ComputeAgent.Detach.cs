using Microsoft.Extensions.Logging;
using Storage.Core;
using Storage.Core.Postgres;
using Storage.Proposer;
using Storage.Proto.Compute;

namespace Storage.Compute;

/// <summary>Detach, and releasing what an attachment holds.</summary>
internal sealed partial class ComputeAgent
{
    public async Task<ComputeStatus> DetachAsync(CancellationToken ct)
    {
        await _operation.WaitAsync(ct);
        try
        {
            string? endpoint;
            lock (_lock)
            {
                if (_state == ComputeState.Idle) return Status();
                endpoint = _request?.Endpoint?.EndpointId;
                _state = ComputeState.Detaching;
            }
            await ReleaseAsync(ShutdownMode.Fast);
            lock (_lock)
            {
                _state = ComputeState.Idle;
                _reason = "";
                _request = null;
                _restarts = 0;
                _lastCrash = "";
            }
            _log.LogInformation("endpoint {EndpointId} detached; VM {VmId} is idle", endpoint, _options.VmId);
            return Status();
        }
        finally { _operation.Release(); }
    }

    /// <summary>
    /// Stops PostgreSQL (a fast stop lets the walproposer commit its last WAL first), then the
    /// walproposer and the proposer, and empties the data directory.
    /// </summary>
    private async Task ReleaseAsync(ShutdownMode mode)
    {
        PostgresServer? postgres;
        WalStreamer? streamer;
        WalProposer? proposer;
        lock (_lock)
        {
            (postgres, streamer, proposer) = (_postgres, _streamer, _proposer);
            (_postgres, _streamer, _proposer) = (null, null, null);
            _slotAdvancedTo = Lsn.Zero;
            _retentionNote = "";
        }
        if (postgres != null)
        {
            await postgres.StopAsync(mode, TimeSpan.FromSeconds(30));
            await postgres.DisposeAsync();
        }
        if (streamer != null)
        {
            if (mode != ShutdownMode.Immediate && proposer is { Phase: not ProposerPhase.Fenced })
            {
                try { await proposer.WaitForCommitAsync(streamer.ReceivedUpTo).WaitAsync(TimeSpan.FromSeconds(10)); }
                catch (Exception e) { _log.LogWarning("last WAL up to {Lsn} not confirmed committed: {Error}", streamer.ReceivedUpTo, e.Message); }
            }
            await streamer.DisposeAsync();
        }
        if (proposer != null) await proposer.DisposeAsync();
        File.Delete(PostmasterRecord.PathIn(_options.WorkDirectory));
        WipeDataDirectory();
    }
}
