using System.Buffers;
using System.Diagnostics;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using Storage.Core;
using Storage.Core.Postgres.Replication;
using Storage.Proposer;

namespace Storage.Compute;

/// <summary>
/// The walproposer: a physical replication client of the compute's PostgreSQL (application_name
/// 'walproposer', which synchronous_standby_names names) that hands every complete WAL record to
/// the <see cref="WalProposer"/> and reports the quorum commit LSN back the moment it advances.
/// That report is what releases the backends waiting in COMMIT, so it reports the quorum commit
/// LSN as the write, flush and apply position alike and never anything more: a COMMIT returns
/// only once a quorum of safekeepers has its WAL on disk, whatever `synchronous_commit` level
/// (`on`, `remote_write`, `remote_apply`) the client picked.
/// </summary>
internal sealed class WalStreamer : IAsyncDisposable
{
    public const string ApplicationName = "walproposer";

    /// <summary>
    /// WAL gathered while the last batch awaits its commit stays below this: beyond it the stream
    /// from PostgreSQL pauses (its walsender then waits, and pg_wal holds the WAL) instead of the
    /// agent's memory growing while no quorum answers.
    /// </summary>
    public const int MaxGatheredBytes = 16 * 1024 * 1024;

    private readonly WalProposer _proposer;
    private readonly ILogger _log;
    private readonly string _host;
    private readonly int _port;
    private readonly string _user;
    private readonly CompleteRecordCutter _cutter;
    private readonly Lsn _start;
    private readonly CancellationTokenSource _stop = new();
    private readonly SemaphoreSlim _commitAdvanced = new(0, 1);
    private readonly ComputeMetrics _metrics;
    private PhysicalReplicationClient? _client;
    private long _latestCommit;
    private long _batchSentAt, _commitSeenAt;
    private long _streamedUpTo;

    public WalStreamer(string socketDirectory, int port, string user, WalProposer proposer, Lsn start, ILogger logger, ComputeMetrics metrics)
    {
        (_host, _port, _user) = (socketDirectory, port, user);
        _metrics = metrics;
        _proposer = proposer;
        _log = logger;
        _start = start;
        _latestCommit = (long)start.Value; // the election waited until a quorum held everything up to E
        _cutter = new CompleteRecordCutter(start);
    }

    /// <summary>End of the WAL handed to the safekeepers.</summary>
    public Lsn StreamedUpTo => new((ulong)Interlocked.Read(ref _streamedUpTo));

    /// <summary>End of the complete WAL records received from PostgreSQL (some may wait in the batch).</summary>
    public Lsn ReceivedUpTo { get { lock (_batchLock) return _cutter.PassedUpTo; } }

    // Commit pacing: at most one batch of WAL awaits its quorum commit. WAL arriving meanwhile is
    // gathered and sent as one append when that commit comes. A lone committer is sent at once;
    // under load this is group commit, which cuts messages, fdatasyncs and thread wake-ups per
    // transaction on every safekeeper and in this process.
    private readonly object _batchLock = new();
    private readonly ArrayBufferWriter<byte> _batch = new(256 * 1024);
    // Record ends inside the batch (the end of each piece the cutter passed): the proposer may cut it there.
    private readonly List<Lsn> _batchRecordEnds = new();
    private bool _awaitingCommit;
    private Lsn _batchEnd;
    private TaskCompletionSource? _batchSent; // set while the receive loop waits for room

    /// <summary>Completes when streaming stops; faults with the reason if it failed.</summary>
    public Task Completion { get; private set; } = Task.CompletedTask;

    public async Task StartAsync(CancellationToken ct)
    {
        _client = await PhysicalReplicationClient.ConnectAsync(_host, _port, _user, ApplicationName, ct);
        await _client.StartReplicationAsync(_start, ct);
        _streamedUpTo = (long)_start.Value;
        _proposer.CommitAdvanced += OnCommitAdvanced;
        var receive = Task.Run(ReceiveLoopAsync);
        var feedback = Task.Run(FeedbackLoopAsync);
        Completion = Task.WhenAll(receive, feedback);
        _log.LogInformation("walproposer streaming from {StartLsn}", _start);
    }

    /// <summary>What this standby reports: the quorum commit LSN as write, flush and apply position.</summary>
    private StandbyStatus CurrentStatus()
    {
        var commit = new Lsn((ulong)Interlocked.Read(ref _latestCommit));
        return new StandbyStatus(commit, commit, commit, DateTime.UtcNow, ReplyRequested: false);
    }

    private async Task ReceiveLoopAsync()
    {
        var ct = _stop.Token;
        try
        {
            await _client!.ReceiveAsync(OnWalAsync, CurrentStatus, ct);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested) { }
        finally
        {
            _stop.Cancel(); // no more WAL: the feedback loop ends too
        }
    }

    private ValueTask OnWalAsync(XLogData message)
    {
        _metrics.WalReceived(DateTime.UtcNow - message.ServerClock);
        Task? waitForRoom = null;
        lock (_batchLock)
        {
            if (message.Start != _cutter.ReceivedUpTo)
                throw new InvalidOperationException($"PostgreSQL sent WAL at {message.Start}, expected {_cutter.ReceivedUpTo}");
            foreach (var segment in message.Data)
            {
                var complete = _cutter.Feed(segment.Span);
                if (complete.IsEmpty) continue;
                _batch.Write(complete);
                _batchRecordEnds.Add(_cutter.PassedUpTo);
            }
            if (_batch.WrittenCount > 0 && !_awaitingCommit) SendBatch();
            else if (_batch.WrittenCount >= MaxGatheredBytes)
                waitForRoom = (_batchSent = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
        }
        return waitForRoom is null ? ValueTask.CompletedTask : new ValueTask(waitForRoom.WaitAsync(_stop.Token));
    }

    /// <summary>Hands the gathered WAL to the proposer (under <see cref="_batchLock"/>).</summary>
    private void SendBatch()
    {
        _batchSentAt = Stopwatch.GetTimestamp();
        _batchEnd = _proposer.Append(_batch.WrittenSpan, CollectionsMarshal.AsSpan(_batchRecordEnds));
        _batch.Clear();
        _batchRecordEnds.Clear();
        _awaitingCommit = true;
        Interlocked.Exchange(ref _streamedUpTo, (long)_batchEnd.Value);
        _batchSent?.TrySetResult();
        _batchSent = null;
    }

    private void OnCommitAdvanced(Lsn commit)
    {
        lock (_batchLock)
        {
            if (_awaitingCommit && commit >= _batchEnd)
            {
                _metrics.QuorumCommitted(Stopwatch.GetElapsedTime(_batchSentAt));
                _awaitingCommit = false;
                if (_batch.WrittenCount > 0) SendBatch();
            }
        }
        Interlocked.Exchange(ref _commitSeenAt, Stopwatch.GetTimestamp());
        Interlocked.Exchange(ref _latestCommit, (long)commit.Value);
        if (_commitAdvanced.CurrentCount == 0)
        {
            try { _commitAdvanced.Release(); } catch (SemaphoreFullException) { } // a wake-up is pending already
        }
    }

    /// <summary>Pushes each new commit LSN to PostgreSQL as this standby's position.</summary>
    private async Task FeedbackLoopAsync()
    {
        var ct = _stop.Token;
        ulong reported = 0;
        try
        {
            while (!ct.IsCancellationRequested)
            {
                await _commitAdvanced.WaitAsync(ct);
                var status = CurrentStatus();
                if (status.Flush.Value <= reported) continue;
                await _client!.SendStatusAsync(status, ct);
                _metrics.FeedbackSent(Stopwatch.GetElapsedTime(Interlocked.Read(ref _commitSeenAt)));
                reported = status.Flush.Value;
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested) { }
    }

    public async ValueTask DisposeAsync()
    {
        _proposer.CommitAdvanced -= OnCommitAdvanced;
        _stop.Cancel();
        try { await Completion.WaitAsync(TimeSpan.FromSeconds(5)); } catch (Exception) { }
        if (_client is not null) await _client.DisposeAsync();
    }
}
