using Microsoft.Extensions.Logging;
using Storage.Core;
using Storage.Proto.Safekeeper;
using Storage.Safekeeper.Consensus;
using Storage.Safekeeper.Storage;

namespace Storage.Safekeeper;

/// <summary>
/// One tenant timeline on this safekeeper: the acceptor, its WAL and control file, and the
/// group-commit flusher. All acceptor calls go through here under one lock; fdatasync runs outside
/// the lock so appends keep arriving while a flush is under way, and the next flush covers them all.
/// </summary>
internal sealed class Timeline : IAsyncDisposable
{
    private readonly object _lock = new();
    private readonly SemaphoreSlim _flushGate = new(1, 1); // one flush or truncation at a time
    private readonly SemaphoreSlim _dirty = new(0, int.MaxValue);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _flusher;
    private readonly TimelineStorage _storage;
    private readonly ILogger _log;
    private readonly SafekeeperMetrics _metrics;
    private TaskCompletionSource _changed = NewSignal();
    private DateTime _lastControlSave = DateTime.UtcNow;

    public Timeline(string directory, TimelineIdentity identity, AcceptorState state, Lsn walEnd, NodeIdentity node, ILogger log, SafekeeperMetrics metrics)
    {
        Directory = directory;
        Identity = identity;
        _log = log;
        _metrics = metrics;
        var wal = new WalStore(new SegmentFiles(directory, new WalGeometry(identity.WalSegmentSize)), walEnd);
        _storage = new TimelineStorage(directory, identity, state, wal);
        Acceptor = new Acceptor(_storage, node.NodeId, node.AvailabilityZone);
        _flusher = Task.Run(FlushLoopAsync);
    }

    public string Directory { get; }
    public TimelineIdentity Identity { get; }
    public string Key => $"{Identity.TenantId}/{Identity.TimelineId}";
    private Acceptor Acceptor { get; }

    /// <summary>Completes when the flush or commit LSN or the term changes (then a new signal is armed).</summary>
    public Task Changed { get { lock (_lock) return _changed.Task; } }

    public AcceptorGreeting Greet() { lock (_lock) return Acceptor.OnGreeting(); }

    public VoteResponse Vote(VoteRequest request)
    {
        lock (_lock)
        {
            var response = Acceptor.OnVoteRequest(request);
            _log.LogInformation("vote for term {Term} {Given} (flush {FlushLsn}, last log term {LastLogTerm}) on {TenantId}/{TimelineId}",
                request.Term, response.VoteGiven ? "given" : "refused", Acceptor.FlushLsn, Acceptor.LastLogTerm, Identity.TenantId, Identity.TimelineId);
            Notify();
            return response;
        }
    }

    public async Task ElectedAsync(ProposerElected elected, CancellationToken ct)
    {
        // Truncation must not race a flush that is syncing the files it changes.
        await _flushGate.WaitAsync(ct);
        try
        {
            lock (_lock)
            {
                var before = Acceptor.WriteLsn;
                Acceptor.OnElected(elected);
                _log.LogInformation("proposer of term {Term} elected: WAL cut at {StartLsn} (was {PreviousEnd}), history {History} on {TenantId}/{TimelineId}",
                    elected.Term, new Lsn(elected.StartStreamingAt), before, Acceptor.History, Identity.TenantId, Identity.TimelineId);
                Notify();
            }
        }
        finally { _flushGate.Release(); }
    }

    public void Append(AppendRequest append)
    {
        lock (_lock) Acceptor.OnAppend(append);
        _metrics.AppendReceived(append.WalData.Length);
        _dirty.Release();
    }

    public TimelineStatus Status()
    {
        lock (_lock)
        {
            var s = new TimelineStatus
            {
                Timeline = new TimelineKey { TenantId = Identity.TenantId, TimelineId = Identity.TimelineId },
                Term = Acceptor.Term,
                LastLogTerm = Acceptor.LastLogTerm,
                FlushLsn = Acceptor.FlushLsn.Value,
                CommitLsn = Acceptor.CommitLsn.Value,
                BackupLsn = _storage.State.BackupLsn.Value,
                RemoteConsistentLsn = _storage.State.RemoteConsistentLsn.Value,
                TimelineStartLsn = Acceptor.TimelineStartLsn.Value,
                NodeId = Acceptor.NodeId,
                AvailabilityZone = Acceptor.AvailabilityZone,
            };
            s.TermHistory.AddRange(Acceptor.History.ToProto());
            return s;
        }
    }

    public (ulong Term, Lsn Flush, Lsn Commit, Lsn TimelineStart) Positions()
    {
        lock (_lock) return (Acceptor.Term, Acceptor.FlushLsn, Acceptor.CommitLsn, Acceptor.TimelineStartLsn);
    }

    /// <summary>Reads WAL bytes below the flush LSN.</summary>
    public int ReadWal(Lsn from, Span<byte> buffer)
    {
        lock (_lock)
        {
            var limit = Acceptor.FlushLsn;
            if (from >= limit) return 0;
            int n = (int)Math.Min((long)buffer.Length, limit - from);
            return _storage.Wal.Read(from, buffer[..n]);
        }
    }

    /// <summary>The group-commit loop: one fdatasync covers every append written while the last one ran.</summary>
    private async Task FlushLoopAsync()
    {
        var ct = _stop.Token;
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await _dirty.WaitAsync(ct);
                while (_dirty.CurrentCount > 0) _dirty.Wait(0); // everything pending is covered by this flush
                await _flushGate.WaitAsync(ct);
                try
                {
                    (Lsn target, Microsoft.Win32.SafeHandles.SafeFileHandle[] handles, ulong[] segments) work;
                    lock (_lock) work = _storage.Wal.BeginFlush();
                    var started = System.Diagnostics.Stopwatch.GetTimestamp();
                    foreach (var h in work.handles) Core.Storage.FileSync.DataSync(h);
                    _metrics.Flushed(System.Diagnostics.Stopwatch.GetElapsedTime(started));
                    lock (_lock)
                    {
                        _storage.Wal.EndFlush(work.target, work.segments);
                        Acceptor.AfterFlush();
                        SaveControlFileIfDue();
                        Notify();
                    }
                }
                finally { _flushGate.Release(); }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested) { break; }
            catch (Exception e)
            {
                // A failed fdatasync means we cannot promise durability: stop acknowledging.
                _log.LogCritical(e, "WAL flush failed on {TenantId}/{TimelineId}; this timeline stops acknowledging appends", Identity.TenantId, Identity.TimelineId);
                FlushError = e;
                Notify();
                return;
            }
        }
    }

    /// <summary>Set when the disk failed a flush: the timeline refuses further work.</summary>
    public Exception? FlushError { get; private set; }

    /// <summary>The latest append response for this timeline (what a proposer stream reports after a flush).</summary>
    public AppendResponse LatestAppendResponse()
    {
        lock (_lock) return new AppendResponse { Term = Acceptor.Term, FlushLsn = Acceptor.FlushLsn.Value, CommitLsn = Acceptor.CommitLsn.Value };
    }

    private void SaveControlFileIfDue()
    {
        // The commit LSN is saved lazily (it is re-learned from the proposer), once a second.
        if (DateTime.UtcNow - _lastControlSave < TimeSpan.FromSeconds(1)) return;
        _storage.Persist(Acceptor.StateToSave());
        _lastControlSave = DateTime.UtcNow;
    }

    private void Notify()
    {
        var old = _changed;
        _changed = NewSignal();
        old.TrySetResult();
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        try { await _flusher; } catch (OperationCanceledException) { }
        await _flushGate.WaitAsync();
        try
        {
            lock (_lock)
            {
                if (FlushError is null)
                {
                    _storage.Wal.Flush();
                    Acceptor.AfterFlush();
                    _storage.Persist(Acceptor.StateToSave());
                }
                _storage.Wal.Dispose();
                Notify();
            }
        }
        finally { _flushGate.Release(); }
    }
}

/// <summary>The <see cref="IAcceptorStorage"/> of a timeline: its control file and WAL store.</summary>
internal sealed class TimelineStorage(string directory, TimelineIdentity identity, AcceptorState state, WalStore wal) : IAcceptorStorage
{
    public WalStore Wal { get; } = wal;
    public AcceptorState State { get; private set; } = state;
    public Lsn WriteLsn => Wal.WriteLsn;
    public Lsn FlushLsn => Wal.FlushLsn;

    public void Persist(AcceptorState newState)
    {
        ControlFile.Save(directory, identity, newState);
        State = newState;
    }

    public void Write(Lsn begin, ReadOnlySpan<byte> data) => Wal.Write(begin, data);
    public void Truncate(Lsn end) => Wal.Truncate(end);
}

/// <summary>Who this safekeeper is.</summary>
internal sealed record NodeIdentity(ulong NodeId, string AvailabilityZone);
