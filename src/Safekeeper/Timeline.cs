using Microsoft.Extensions.Logging;
using Storage.Core;
using Storage.Core.Api;
using Storage.Core.Errors;
using Storage.Proto.Safekeeper;
using Storage.Safekeeper.Consensus;
using Storage.Safekeeper.Storage;

namespace Storage.Safekeeper;

/// <summary>
/// One tenant timeline on this safekeeper: the acceptor, its WAL and control file, and the
/// group-commit flusher. All acceptor calls go through here under one lock; fdatasync runs outside
/// the lock so appends keep arriving while a flush is under way, and the next flush covers them all.
/// The flusher is a dedicated thread: fdatasync blocks, and on a small machine a blocked pool
/// thread delays every other continuation (the pool starts with one thread per core).
/// </summary>
internal sealed class Timeline : IReadableWal, IAsyncDisposable
{
    private readonly object _lock = new();
    // One flush, truncation or control file write at a time (so a control file never claims WAL a
    // truncation removed, and saves land in order).
    private readonly SemaphoreSlim _flushGate = new(1, 1);
    private readonly AutoResetEvent _dirty = new(false); // set when WAL was written since the last flush began
    private readonly CancellationTokenSource _stop = new();
    private readonly Thread _flusher;
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
        _flusher = new Thread(FlushLoop) { IsBackground = true, Name = "wal-flush" };
        _flusher.Start();
    }

    public string Directory { get; }
    public TimelineIdentity Identity { get; }
    public string Key => $"{Identity.TenantId}/{Identity.TimelineId}";
    private Acceptor Acceptor { get; }

    /// <summary>Completes when the flush or commit LSN or the term changes (then a new signal is armed).</summary>
    public Task Changed { get { lock (_lock) return _changed.Task; } }

    public AcceptorGreeting Greet() { lock (_lock) return Acceptor.OnGreeting(); }

    public async Task<VoteResponse> VoteAsync(VoteRequest request, CancellationToken ct)
    {
        // A vote saves the control file: under the gate, so it cannot race the flusher's saves.
        await _flushGate.WaitAsync(ct);
        try
        {
            VoteResponse response;
            lock (_lock)
            {
                response = Acceptor.OnVoteRequest(request);
                _log.LogInformation("vote for term {Term} {Given} (flush {FlushLsn}, last log term {LastLogTerm}) on {TenantId}/{TimelineId}",
                    request.Term, response.VoteGiven ? "given" : "refused", Acceptor.FlushLsn, Acceptor.LastLogTerm, Identity.TenantId, Identity.TimelineId);
            }
            Notify();
            return response;
        }
        finally { _flushGate.Release(); }
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
            }
            Notify();
        }
        finally { _flushGate.Release(); }
    }

    public void Append(AppendRequest append)
    {
        bool commitMoved = false;
        lock (_lock)
        {
            Acceptor.OnAppend(append);
            if (append.WalData.IsEmpty)
            {
                // Only a commit LSN update: learn it now (up to what is already durable), no flush needed.
                var before = Acceptor.CommitLsn;
                Acceptor.AfterFlush();
                commitMoved = Acceptor.CommitLsn != before;
            }
        }
        _metrics.AppendReceived(append.WalData.Length);
        if (!append.WalData.IsEmpty) _dirty.Set();
        else if (commitMoved) Notify();
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
                LocalStartLsn = Acceptor.LocalStartLsn.Value,
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

    /// <summary>WAL below this is in object storage.</summary>
    public Lsn BackupLsn { get { lock (_lock) return _storage.State.BackupLsn; } }

    /// <summary>WAL below this is in a pageserver's remote copy (zero until one reports).</summary>
    public Lsn RemoteConsistentLsn { get { lock (_lock) return _storage.State.RemoteConsistentLsn; } }

    /// <summary>The first LSN still on disk.</summary>
    public Lsn LocalStartLsn { get { lock (_lock) return _storage.State.LocalStartLsn; } }

    /// <summary>
    /// Durably records a pageserver's remote_consistent_lsn: never backwards (a late report of an
    /// older position is ignored) and clamped to our commit LSN (a pageserver may have ingested
    /// from a peer whose commit LSN is ahead of ours; we promise nothing beyond what we know is
    /// committed). Returns the value kept.
    /// </summary>
    public async Task<Lsn> ReportRemoteConsistentAsync(Lsn reported, string pageserverId, CancellationToken ct)
    {
        await _flushGate.WaitAsync(ct);
        try
        {
            AcceptorState state;
            Lsn kept;
            lock (_lock)
            {
                kept = Lsn.Min(reported, Acceptor.CommitLsn);
                if (kept <= _storage.State.RemoteConsistentLsn) return _storage.State.RemoteConsistentLsn;
                state = Acceptor.StateToSave() with { RemoteConsistentLsn = kept };
            }
            _storage.Persist(state);
            _log.LogDebug("pageserver {PageserverId} reports remote consistent LSN {Reported}; kept {RemoteConsistentLsn} on {TenantId}/{TimelineId}",
                pageserverId, reported, kept, Identity.TenantId, Identity.TimelineId);
            return kept;
        }
        finally { _flushGate.Release(); }
    }

    /// <summary>
    /// Deletes the segment files wholly below the trim horizon (see <see cref="TrimHorizon"/>).
    /// The new local start is saved before any file goes, so reads below it are refused from then
    /// on and a crash in between leaves only files that recovery ignores and the next round deletes.
    /// </summary>
    public async Task<IReadOnlyList<ulong>> TrimAsync(CancellationToken ct)
    {
        var geometry = _storage.Wal.Geometry;
        await _flushGate.WaitAsync(ct);
        try
        {
            AcceptorState? save = null;
            Lsn horizon;
            lock (_lock)
            {
                var state = _storage.State;
                horizon = TrimHorizon.Compute(state.RemoteConsistentLsn, state.BackupLsn, Acceptor.CommitLsn, Acceptor.FlushLsn);
                var newStart = TrimHorizon.NewLocalStart(horizon, state.LocalStartLsn, geometry);
                if (newStart > state.LocalStartLsn) save = Acceptor.StateToSave() with { LocalStartLsn = newStart };
            }
            if (save is not null) _storage.Persist(save);
            IReadOnlyList<ulong> removed;
            Lsn localStart;
            lock (_lock)
            {
                localStart = _storage.State.LocalStartLsn;
                removed = _storage.Wal.RemoveBelow(geometry.SegmentNumber(localStart));
            }
            if (removed.Count == 0) return removed;
            Core.Storage.FileSync.SyncDirectory(Directory);
            _metrics.SegmentsDeleted(removed.Count);
            _log.LogInformation("trimmed WAL segments {First}..{Last} of {TenantId}/{TimelineId}: horizon {TrimHorizon}, local WAL now starts at {LocalStartLsn}",
                geometry.SegmentFileName(1, removed[0]), geometry.SegmentFileName(1, removed[^1]), Identity.TenantId, Identity.TimelineId, horizon, localStart);
            return removed;
        }
        finally { _flushGate.Release(); }
    }

    /// <summary>Handles a proposer's StartWalAt (see <see cref="Acceptor.OnStartWalAt"/>).</summary>
    public async Task StartWalAtAsync(StartWalAt start, CancellationToken ct)
    {
        // It drops WAL files: not while a flush syncs them.
        await _flushGate.WaitAsync(ct);
        try
        {
            lock (_lock)
            {
                var before = Acceptor.WriteLsn;
                Acceptor.OnStartWalAt(start);
                if (Acceptor.WriteLsn != before)
                    _log.LogWarning("peers trimmed the WAL after {PreviousEnd}: local WAL restarts at {LocalStartLsn} (term {Term}) on {TenantId}/{TimelineId}",
                        before, Acceptor.LocalStartLsn, start.Term, Identity.TenantId, Identity.TimelineId);
            }
            Notify();
        }
        finally { _flushGate.Release(); }
    }

    /// <summary>
    /// Reads a whole WAL segment file that lies entirely below the commit LSN (so nothing rewrites
    /// it any more), in chunks so appends are not held up.
    /// </summary>
    public byte[] ReadCommittedSegment(ulong segment)
    {
        var geometry = new WalGeometry(Identity.WalSegmentSize);
        var start = geometry.SegmentStart(segment);
        var bytes = new byte[geometry.SegmentSize];
        const int Chunk = 1 << 20;
        for (int offset = 0; offset < bytes.Length; offset += Chunk)
        {
            lock (_lock)
            {
                if (start + (ulong)geometry.SegmentSize > Acceptor.CommitLsn)
                    throw new InvalidOperationException($"segment {segment} is not entirely committed (commit {Acceptor.CommitLsn})");
                if (_storage.Wal.Read(start + (ulong)offset, bytes.AsSpan(offset, Math.Min(Chunk, bytes.Length - offset))) <= 0)
                    throw new IOException($"WAL segment {segment} could not be read");
            }
        }
        return bytes;
    }

    /// <summary>Records durably that WAL below <paramref name="lsn"/> is in object storage.</summary>
    public async Task AdvanceBackupLsnAsync(Lsn lsn, CancellationToken ct)
    {
        // Under the gate, like every control file write, so saves land in order.
        await _flushGate.WaitAsync(ct);
        try
        {
            AcceptorState state;
            lock (_lock)
            {
                if (lsn <= _storage.State.BackupLsn) return;
                state = Acceptor.StateToSave() with { BackupLsn = lsn };
            }
            _storage.Persist(state);
        }
        finally { _flushGate.Release(); }
    }

    /// <summary>Reads WAL bytes below the flush LSN; refuses WAL below the local start clearly.</summary>
    public int ReadWal(Lsn from, Span<byte> buffer)
    {
        lock (_lock)
        {
            if (from < Acceptor.LocalStartLsn) throw new WalRemovedException(from, Acceptor.LocalStartLsn, Acceptor.NodeId);
            var limit = Acceptor.FlushLsn;
            if (from >= limit) return 0;
            int n = (int)Math.Min((long)buffer.Length, limit - from);
            return _storage.Wal.Read(from, buffer[..n]);
        }
    }

    /// <summary>The group-commit loop: one fdatasync covers every append written while the last one ran.</summary>
    private void FlushLoop()
    {
        var ct = _stop.Token;
        while (true)
        {
            try
            {
                _dirty.WaitOne(); // auto-reset: appends arriving from here on set it again for the next round
                if (ct.IsCancellationRequested) return;
                _flushGate.Wait(ct);
                try
                {
                    (Lsn target, Microsoft.Win32.SafeHandles.SafeFileHandle[] handles, ulong[] segments) work;
                    lock (_lock) work = _storage.Wal.BeginFlush();
                    var started = System.Diagnostics.Stopwatch.GetTimestamp();
                    foreach (var h in work.handles) Core.Storage.FileSync.DataSync(h);
                    _metrics.Flushed(System.Diagnostics.Stopwatch.GetElapsedTime(started));
                    AcceptorState? save = null;
                    lock (_lock)
                    {
                        _storage.Wal.EndFlush(work.target, work.segments);
                        Acceptor.AfterFlush();
                        if (DateTime.UtcNow - _lastControlSave >= ControlSaveInterval) save = Acceptor.StateToSave();
                    }
                    Notify(); // acknowledge first: the control file write below is not on the commit path
                    if (save is not null)
                    {
                        // Outside the lock so appends continue; the gate keeps truncation and votes out,
                        // so the saved flush LSN (taken after this fdatasync) is still durable WAL.
                        try
                        {
                            _storage.Persist(save);
                            _lastControlSave = DateTime.UtcNow;
                        }
                        catch (IOException e) when (Core.Storage.DiskFull.Is(e))
                        {
                            // This save is lazy (what it holds is re-learned); the next flush tries again.
                            _log.LogWarning("control file of {TenantId}/{TimelineId} not saved, disk full: {Error}", Identity.TenantId, Identity.TimelineId, e.Message);
                        }
                    }
                }
                finally { _flushGate.Release(); }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested) { return; }
            catch (Exception e)
            {
                // A failed fdatasync (EIO) means we cannot promise durability: stop acknowledging,
                // for good. Retrying is not safe: the kernel may already have marked the unwritten
                // pages clean, so a second fdatasync could succeed with the data never on disk
                // (PostgreSQL's "fsyncgate"). A full disk normally does not get here: a segment's
                // space is taken when it is preallocated, before WAL is written into it.
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

    // The commit LSN is saved lazily (it is re-learned from the proposer), once a second.
    private static readonly TimeSpan ControlSaveInterval = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Wakes whoever waits on <see cref="Changed"/>. Called outside the lock: waiters' continuations
    /// run right here (the proposer stream's responder sends its ack without a thread hop).
    /// </summary>
    private void Notify()
    {
        TaskCompletionSource old;
        lock (_lock)
        {
            old = _changed;
            _changed = NewSignal();
        }
        old.TrySetResult();
    }

    private static TaskCompletionSource NewSignal() => new();

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _dirty.Set();
        await Task.Run(_flusher.Join);
        await _flushGate.WaitAsync();
        try
        {
            lock (_lock)
            {
                if (FlushError is null)
                {
                    _storage.Wal.Flush();
                    Acceptor.AfterFlush();
                    try { _storage.Persist(Acceptor.StateToSave()); }
                    catch (IOException e) when (Core.Storage.DiskFull.Is(e))
                    {
                        _log.LogWarning("control file of {TenantId}/{TimelineId} not saved at shutdown, disk full: {Error}", Identity.TenantId, Identity.TimelineId, e.Message);
                    }
                }
                _storage.Wal.Dispose();
            }
            Notify();
        }
        finally { _flushGate.Release(); }
        _dirty.Dispose();
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
    public void ResetWal(Lsn start) => Wal.ResetTo(start);
}

/// <summary>Who this safekeeper is.</summary>
internal sealed record NodeIdentity(ulong NodeId, string AvailabilityZone);
