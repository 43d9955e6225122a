using System.Buffers;
using Microsoft.Extensions.Logging;
using Npgsql.Replication;
using NpgsqlTypes;
using Storage.Core;
using Storage.Proposer;

namespace Storage.Compute;

/// <summary>
/// The walproposer: a physical replication client of the compute's PostgreSQL (application_name
/// 'walproposer', which synchronous_standby_names names) that hands every complete WAL record to
/// the <see cref="WalProposer"/> and reports the quorum commit LSN back as its flush position the
/// moment it advances. That report is what releases the backends waiting in COMMIT.
/// </summary>
internal sealed class WalStreamer : IAsyncDisposable
{
    public const string ApplicationName = "walproposer";

    private readonly WalProposer _proposer;
    private readonly ILogger _log;
    private readonly PhysicalReplicationConnection _connection;
    private readonly CompleteRecordCutter _cutter;
    private readonly Lsn _start;
    private readonly CancellationTokenSource _stop = new();
    private readonly SemaphoreSlim _commitAdvanced = new(0, 1);
    private long _latestCommit;
    private Task _receive = Task.CompletedTask;
    private Task _feedback = Task.CompletedTask;

    private readonly ComputeMetrics _metrics;
    private long _batchSentAt, _commitSeenAt;

    public WalStreamer(string connectionString, WalProposer proposer, Lsn start, ILogger logger, ComputeMetrics metrics)
    {
        _metrics = metrics;
        _proposer = proposer;
        _log = logger;
        _start = start;
        _cutter = new CompleteRecordCutter(start);
        _connection = new PhysicalReplicationConnection(connectionString + $";Application Name={ApplicationName}");
    }

    /// <summary>End of the WAL handed to the safekeepers.</summary>
    public Lsn StreamedUpTo => new((ulong)Interlocked.Read(ref _streamedUpTo));
    private long _streamedUpTo;

    /// <summary>End of the complete WAL records received from PostgreSQL (some may wait in the batch).</summary>
    public Lsn ReceivedUpTo { get { lock (_batchLock) return _cutter.PassedUpTo; } }

    // Commit pacing: at most one batch of WAL awaits its quorum commit. WAL arriving meanwhile is
    // gathered and sent as one append when that commit comes. A lone committer is sent at once;
    // under load this is group commit, which cuts messages, fdatasyncs and thread wake-ups per
    // transaction on every safekeeper and in this process.
    private readonly object _batchLock = new();
    private readonly ArrayBufferWriter<byte> _batch = new(256 * 1024);
    private bool _awaitingCommit;
    private Lsn _batchEnd;

    /// <summary>Completes when streaming stops; faults with the reason if it failed.</summary>
    public Task Completion { get; private set; } = Task.CompletedTask;

    public async Task StartAsync(CancellationToken ct)
    {
        await _connection.Open(ct);
        _streamedUpTo = (long)_start.Value;
        _proposer.CommitAdvanced += OnCommitAdvanced;
        _receive = Task.Run(ReceiveLoopAsync);
        _feedback = Task.Run(FeedbackLoopAsync);
        Completion = Task.WhenAll(_receive, _feedback);
        _log.LogInformation("walproposer streaming from {StartLsn}", _start);
    }

    private async Task ReceiveLoopAsync()
    {
        var ct = _stop.Token;
        var chunk = new MemoryStream();
        try
        {
            await foreach (var message in _connection.StartReplication(new NpgsqlLogSequenceNumber(_start.Value), ct))
            {
                _metrics.WalReceived(DateTime.UtcNow - message.ServerClock);
                var at = new Lsn((ulong)message.WalStart);
                if (at != _cutter.ReceivedUpTo)
                    throw new InvalidOperationException($"PostgreSQL sent WAL at {at}, expected {_cutter.ReceivedUpTo}");
                chunk.SetLength(0);
                await message.Data.CopyToAsync(chunk, ct);
                lock (_batchLock)
                {
                    var complete = _cutter.Feed(chunk.GetBuffer().AsSpan(0, (int)chunk.Length));
                    if (complete.IsEmpty) continue;
                    _batch.Write(complete);
                    if (!_awaitingCommit) SendBatch();
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested) { }
        finally
        {
            _stop.Cancel(); // no more WAL: the feedback loop ends too
        }
    }

    /// <summary>Hands the gathered WAL to the proposer as one append (under <see cref="_batchLock"/>).</summary>
    private void SendBatch()
    {
        _batchSentAt = System.Diagnostics.Stopwatch.GetTimestamp();
        _batchEnd = _proposer.Append(_batch.WrittenSpan);
        _batch.Clear();
        _awaitingCommit = true;
        Interlocked.Exchange(ref _streamedUpTo, (long)_batchEnd.Value);
    }

    private void OnCommitAdvanced(Lsn commit)
    {
        lock (_batchLock)
        {
            if (_awaitingCommit && commit >= _batchEnd)
            {
                _metrics.QuorumCommitted(System.Diagnostics.Stopwatch.GetElapsedTime(_batchSentAt));
                _awaitingCommit = false;
                if (_batch.WrittenCount > 0) SendBatch();
            }
        }
        Interlocked.Exchange(ref _commitSeenAt, System.Diagnostics.Stopwatch.GetTimestamp());
        Interlocked.Exchange(ref _latestCommit, (long)commit.Value);
        if (_commitAdvanced.CurrentCount == 0)
        {
            try { _commitAdvanced.Release(); } catch (SemaphoreFullException) { } // a wake-up is pending already
        }
    }

    /// <summary>Pushes each new commit LSN to PostgreSQL as this standby's flush (and apply) position.</summary>
    private async Task FeedbackLoopAsync()
    {
        var ct = _stop.Token;
        ulong reported = 0;
        try
        {
            while (!ct.IsCancellationRequested)
            {
                await _commitAdvanced.WaitAsync(ct);
                var commit = (ulong)Interlocked.Read(ref _latestCommit);
                if (commit <= reported) continue;
                _connection.SetReplicationStatus(new NpgsqlLogSequenceNumber(commit));
                await _connection.SendStatusUpdate(ct);
                _metrics.FeedbackSent(System.Diagnostics.Stopwatch.GetElapsedTime(Interlocked.Read(ref _commitSeenAt)));
                reported = commit;
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested) { }
    }

    public async ValueTask DisposeAsync()
    {
        _proposer.CommitAdvanced -= OnCommitAdvanced;
        _stop.Cancel();
        try { await Completion.WaitAsync(TimeSpan.FromSeconds(5)); } catch (Exception) { }
        try { await _connection.DisposeAsync(); } catch (Exception) { }
    }
}
