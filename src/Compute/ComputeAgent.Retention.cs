using Microsoft.Extensions.Logging;
using Npgsql;
using Storage.Core;
using Storage.Proto.Compute;

namespace Storage.Compute;

/// <summary>The retention slot: pg_wal keeps what a safekeeper lacks, within a bound.</summary>
internal sealed partial class ComputeAgent
{
    /// <summary>
    /// Moves the retention slot to the lowest safekeeper flush LSN, so pg_wal keeps only what some
    /// safekeeper lacks, but never more than <see cref="AgentOptions.MaxRetainedWalBytes"/> below the commit LSN.
    /// </summary>
    public async Task AdvanceRetentionSlotAsync()
    {
        Lsn target;
        lock (_lock)
        {
            if (_state != ComputeState.Running || _proposer is null) return;
            var slowest = _proposer.SafekeeperFlushLsns.Min();
            var commit = _proposer.CommitLsn;
            var retained = (ulong)_options.MaxRetainedWalBytes;
            var bound = commit.Value > retained ? new Lsn(commit.Value - retained) : Lsn.Zero;
            target = Lsn.MaxOf(slowest, bound);
            _retentionNote = slowest < bound
                ? $"a safekeeper lags {(commit - slowest) >> 20} MiB behind the commit LSN: pg_wal keeps only the last {retained >> 20} MiB (it catches up from its peers)"
                : "";
            if (target <= _slotAdvancedTo || target < _startLsn) return;
        }
        try
        {
            await using var connection = new NpgsqlConnection(LocalConnectionString());
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand($"SELECT pg_replication_slot_advance('{RetentionSlot}', '{target}')", connection);
            await command.ExecuteNonQueryAsync();
            lock (_lock) _slotAdvancedTo = target;
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException)
        {
            _log.LogDebug("retention slot not advanced to {Lsn}: {Error}", target, e.Message);
        }
    }
}
