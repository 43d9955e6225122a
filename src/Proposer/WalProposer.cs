using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Polly;
using Polly.Retry;
using Storage.Core;
using Storage.Core.Api;
using Grpc.Core;
using Storage.Core.Rpc;
using Storage.Core.Wal;
using Storage.Proto.Safekeeper;
using SafekeeperGrpc = Storage.Proto.Safekeeper.Safekeeper;

namespace Storage.Proposer;

public sealed record WalProposerOptions
{
    public required string TenantId { get; init; }
    public required string TimelineId { get; init; }
    public required IReadOnlyList<Uri> Safekeepers { get; init; }
    public string ProposerId { get; init; } = $"proposer-{Environment.ProcessId}-{Guid.NewGuid():N}"[..32];
    /// <summary>The term to start above (a restarted proposer passes the last term it knew).</summary>
    public ulong MinimumTerm { get; init; }
    /// <summary>The compute's tenant-bound token, sent on every call to the safekeepers (null: the process's own).</summary>
    public string? Token { get; init; }
    public TimeSpan ReconnectDelay { get; init; } = TimeSpan.FromMilliseconds(50);
    public TimeSpan MaxReconnectDelay { get; init; } = TimeSpan.FromSeconds(1);
    /// <summary>Append size, per-safekeeper window and buffer bound (defaults: <see cref="ProposerCore.DefaultLimits"/>).</summary>
    public ProposerLimits? Limits { get; init; }
}

/// <summary>The proposer's term was superseded by another proposer: it can never commit again.</summary>
public sealed class ProposerFencedException(string reason) : Exception(reason);

/// <summary>
/// The networked proposer: drives a <see cref="ProposerCore"/> over one gRPC ProposerStream per
/// safekeeper, reconnects with backoff, recovers WAL a lagging safekeeper needs from a peer
/// (ReadWal with its term), and publishes the commit LSN the moment it advances.
/// </summary>
public sealed class WalProposer : IAsyncDisposable
{
    private readonly object _lock = new();
    private readonly ProposerCore _core;
    private readonly WalProposerOptions _options;
    private readonly ILogger _log;
    private readonly SafekeeperGrpc.SafekeeperClient[] _clients;
    private readonly Channel<ProposerMessage>?[] _outbound;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _links = new();
    private readonly TaskCompletionSource<Lsn> _elected = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource<string> _fenced = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly SortedList<ulong, List<TaskCompletionSource<Lsn>>> _commitWaiters = new();
    private readonly ResiliencePipeline _reconnect;
    private readonly bool[] _reportedDown;
    private Lsn _publishedCommit;
    private bool _recovering;

    public WalProposer(WalProposerOptions options, ILogger logger)
    {
        if (options.Safekeepers.Count == 0) throw new ArgumentException("at least one safekeeper is needed");
        _options = options;
        _log = logger;
        _core = new ProposerCore(options.ProposerId, options.Safekeepers.Count, options.MinimumTerm,
            SafekeeperClient.Key(options.TenantId, options.TimelineId), options.Limits);
        _clients = options.Safekeepers.Select(s => SafekeeperClient.For(s, options.Token)).ToArray();
        _outbound = new Channel<ProposerMessage>?[options.Safekeepers.Count];
        _reportedDown = new bool[options.Safekeepers.Count];
        _reconnect = new ResiliencePipelineBuilder()
            .AddRetry(new RetryStrategyOptions
            {
                ShouldHandle = new PredicateBuilder().Handle<Exception>(e => e is not OperationCanceledException || !_stop.IsCancellationRequested),
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = options.ReconnectDelay,
                MaxDelay = options.MaxReconnectDelay,
                MaxRetryAttempts = int.MaxValue,
            })
            .Build();
    }

    /// <summary>Raised (outside any lock) each time the commit LSN advances.</summary>
    public event Action<Lsn>? CommitAdvanced;

    public Lsn CommitLsn { get { lock (_lock) return _core.CommitLsn; } }
    public Lsn EndLsn { get { lock (_lock) return _core.EndLsn; } }
    public ulong Term { get { lock (_lock) return _core.Term; } }
    public ProposerPhase Phase { get { lock (_lock) return _core.Phase; } }
    public string? FenceReason { get { lock (_lock) return _core.FenceReason; } }
    /// <summary>Completes with the reason when another proposer takes over.</summary>
    public Task<string> Fenced => _fenced.Task;

    /// <summary>Acknowledged flush LSN of each safekeeper in this term.</summary>
    public IReadOnlyList<Lsn> SafekeeperFlushLsns { get { lock (_lock) return Enumerable.Range(0, _clients.Length).Select(_core.AckedFlush).ToArray(); } }

    public void Start()
    {
        for (int i = 0; i < _clients.Length; i++)
        {
            int index = i;
            _links.Add(Task.Run(() => LinkLoopAsync(index)));
        }
    }

    /// <summary>Waits until this proposer wins the election; returns its start LSN E.</summary>
    public async Task<Lsn> WaitElectedAsync(CancellationToken ct)
    {
        var done = await Task.WhenAny(_elected.Task, _fenced.Task).WaitAsync(ct);
        if (done == _fenced.Task) throw new ProposerFencedException(_fenced.Task.Result);
        return _elected.Task.Result;
    }

    /// <summary>
    /// Appends whole WAL records at <see cref="EndLsn"/>; returns the new end. <paramref name="recordEnds"/>
    /// names record ends inside <paramref name="wal"/>, where it may be cut into several appends.
    /// </summary>
    public Lsn Append(ReadOnlySpan<byte> wal, ReadOnlySpan<Lsn> recordEnds = default)
    {
        lock (_lock)
        {
            if (_core.Phase == ProposerPhase.Fenced) throw new ProposerFencedException(_core.FenceReason!);
            _core.AppendWal(wal, recordEnds);
            Drain();
            return _core.EndLsn;
        }
    }

    /// <summary>Completes when the commit LSN reaches <paramref name="lsn"/> (fails if the proposer is fenced).</summary>
    public Task<Lsn> WaitForCommitAsync(Lsn lsn, CancellationToken ct = default)
    {
        lock (_lock)
        {
            if (_core.Phase == ProposerPhase.Fenced) return Task.FromException<Lsn>(new ProposerFencedException(_core.FenceReason!));
            if (_core.CommitLsn >= lsn) return Task.FromResult(_core.CommitLsn);
            var tcs = new TaskCompletionSource<Lsn>(TaskCreationOptions.RunContinuationsAsynchronously);
            if (!_commitWaiters.TryGetValue(lsn.Value, out var list)) _commitWaiters[lsn.Value] = list = new();
            list.Add(tcs);
            return ct.CanBeCanceled ? tcs.Task.WaitAsync(ct) : tcs.Task;
        }
    }

    /// <summary>A conversation that ran at least this long before it broke is retried at once; shorter ones back off.</summary>
    private static readonly TimeSpan HealthyConversation = TimeSpan.FromSeconds(10);

    private async Task LinkLoopAsync(int index)
    {
        var ct = _stop.Token;
        var backoff = _options.ReconnectDelay;
        while (!ct.IsCancellationRequested && Phase != ProposerPhase.Fenced)
        {
            AsyncDuplexStreamingCall<ProposerMessage, AcceptorMessage>? call = null;
            var began = System.Diagnostics.Stopwatch.StartNew();
            try
            {
                call = await _reconnect.ExecuteAsync(async token => await ConnectAsync(index, token), ct);
                began.Restart();
                await RunConnectionAsync(index, call, ct);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested) { break; }
            catch (Exception e)
            {
                _log.LogDebug("safekeeper {Safekeeper} link ended: {Error}", _options.Safekeepers[index], e.Message);
            }
            finally
            {
                call?.Dispose();
            }
            // A safekeeper that keeps refusing the conversation (a full disk, say) is not hammered:
            // each retry would redo work (preallocating a segment) for nothing.
            if (began.Elapsed >= HealthyConversation) { backoff = _options.ReconnectDelay; continue; }
            try { await Task.Delay(backoff, ct); } catch (OperationCanceledException) { break; }
            backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, _options.MaxReconnectDelay.Ticks));
        }
    }

    /// <summary>Opens the stream and waits for the greeting (so a dead safekeeper is retried with backoff).</summary>
    private async Task<AsyncDuplexStreamingCall<ProposerMessage, AcceptorMessage>> ConnectAsync(int index, CancellationToken ct)
    {
        var call = _clients[index].ProposerStream(cancellationToken: ct);
        // Unbounded in messages, bounded in bytes: the core sends one safekeeper at most
        // ProposerLimits.MaxUnacknowledgedBytes of WAL it has not acknowledged.
        var outbound = Channel.CreateUnbounded<ProposerMessage>(new UnboundedChannelOptions { SingleReader = true });
        try
        {
            lock (_lock)
            {
                _outbound[index] = outbound;
                _core.OnConnected(index);
                Drain();
            }
            _ = SendLoopAsync(call, outbound, ct);
            var greeting = await call.ResponseStream.MoveNext(ct) ? call.ResponseStream.Current
                : throw new RpcException(new Status(StatusCode.Unavailable, "the safekeeper closed the stream before greeting"));
            Handle(index, greeting);
            _reportedDown[index] = false;
            _log.LogInformation("connected to safekeeper {Safekeeper} (node {NodeId}, {AvailabilityZone}, term {Term})",
                _options.Safekeepers[index], greeting.Greeting?.NodeId, greeting.Greeting?.AvailabilityZone, greeting.Greeting?.Term);
            return call;
        }
        catch (Exception e)
        {
            if (!_reportedDown[index] && !ct.IsCancellationRequested)
            {
                _reportedDown[index] = true; // once per outage; retries continue quietly
                _log.LogWarning("cannot reach safekeeper {Safekeeper}, retrying: {Error}", _options.Safekeepers[index], e.Message);
            }
            Disconnected(index, outbound, e);
            call.Dispose();
            throw;
        }
    }

    private async Task RunConnectionAsync(int index, AsyncDuplexStreamingCall<ProposerMessage, AcceptorMessage> call, CancellationToken ct)
    {
        var outbound = _outbound[index];
        try
        {
            while (await call.ResponseStream.MoveNext(ct)) Handle(index, call.ResponseStream.Current);
            throw new RpcException(new Status(StatusCode.Unavailable, "the safekeeper ended the stream"));
        }
        catch (Exception e)
        {
            Disconnected(index, outbound, e);
            throw;
        }
    }

    private static async Task SendLoopAsync(AsyncDuplexStreamingCall<ProposerMessage, AcceptorMessage> call, Channel<ProposerMessage> outbound, CancellationToken ct)
    {
        try
        {
            await foreach (var message in outbound.Reader.ReadAllAsync(ct))
                await call.RequestStream.WriteAsync(message, ct);
        }
        catch (Exception)
        {
            call.Dispose(); // the reader sees the failure and reconnects
        }
    }

    private void Handle(int index, AcceptorMessage message)
    {
        lock (_lock)
        {
            _core.OnMessage(index, message);
            Drain();
        }
        AfterStep();
    }

    private void Disconnected(int index, Channel<ProposerMessage>? outbound, Exception error)
    {
        lock (_lock)
        {
            if (_outbound[index] != outbound) return; // a newer connection already replaced it
            _outbound[index] = null;
            outbound?.Writer.TryComplete();
            if (error is RpcException rpc && rpc.SafekeeperTerm() is { } term)
                _core.OnRefused(index, term, rpc.Status.Detail);
            else
                _core.OnDisconnected(index);
            Drain();
        }
        AfterStep();
    }

    /// <summary>Hands the core's outgoing messages to the per-safekeeper send queues (under the lock).</summary>
    private void Drain()
    {
        foreach (var o in _core.Outbox) _outbound[o.Acceptor]?.Writer.TryWrite(o.Message);
        _core.Outbox.Clear();
    }

    /// <summary>Publishes election, fencing and commit progress; starts recovery if needed (outside the lock).</summary>
    private void AfterStep()
    {
        Lsn commit;
        List<TaskCompletionSource<Lsn>> ready = new();
        RecoveryNeed? recovery = null;
        ProposerPhase phase;
        string? fence;
        lock (_lock)
        {
            phase = _core.Phase;
            fence = _core.FenceReason;
            commit = _core.CommitLsn;
            if (commit > _publishedCommit)
            {
                _publishedCommit = commit;
                while (_commitWaiters.Count > 0 && _commitWaiters.Keys[0] <= commit.Value)
                {
                    ready.AddRange(_commitWaiters.Values[0]);
                    _commitWaiters.RemoveAt(0);
                }
            }
            else commit = Lsn.Zero;
            if (phase == ProposerPhase.Fenced)
            {
                foreach (var list in _commitWaiters.Values) ready.AddRange(list);
                _commitWaiters.Clear();
            }
            if (!_recovering && _core.PendingRecovery is { } need) { recovery = need; _recovering = true; }
        }
        if (phase == ProposerPhase.Elected && _elected.TrySetResult(_core.StartLsn))
            _log.LogInformation("elected with term {Term} on {TenantId}/{TimelineId}: start LSN {StartLsn}, donor safekeeper {Donor}",
                _core.Term, _options.TenantId, _options.TimelineId, _core.StartLsn, _options.Safekeepers[_core.Donor]);
        if (phase == ProposerPhase.Fenced && _fenced.TrySetResult(fence!))
        {
            _log.LogWarning("proposer fenced on {TenantId}/{TimelineId}: {Reason}", _options.TenantId, _options.TimelineId, fence);
            foreach (var w in ready) w.TrySetException(new ProposerFencedException(fence!));
            return;
        }
        foreach (var w in ready) w.TrySetResult(commit);
        if (commit.IsValid) CommitAdvanced?.Invoke(commit);
        if (recovery is { } r) _ = Task.Run(() => RecoverAsync(r));
    }

    /// <summary>
    /// Reads WAL a lagging safekeeper needs from a peer of this term. When the peers have trimmed
    /// it, the lagging safekeeper starts its local WAL where they still hold WAL instead (see
    /// <see cref="ProposerCore.OnPeerWalRemoved"/>), and the next round recovers from there.
    /// </summary>
    private async Task RecoverAsync(RecoveryNeed need)
    {
        try
        {
            Lsn? removedBelow = null;
            foreach (var source in need.Sources)
            {
                try
                {
                    var bytes = new MemoryStream();
                    await SafekeeperClient.ReadWalAsync(_options.Safekeepers[source], SafekeeperClient.Key(_options.TenantId, _options.TimelineId),
                        need.From, need.To, Term, bytes, TimeSpan.FromSeconds(30), _stop.Token, _options.Token);
                    var wal = bytes.GetBuffer().AsSpan(0, (int)bytes.Length);
                    // Nothing a peer sends is passed on unchecked: every record must decode with a good CRC.
                    var recordEnds = WalRecordEnds.Find(need.From, wal);
                    _log.LogInformation("recovered WAL [{From}, {To}) from safekeeper {Safekeeper}", need.From, need.To, _options.Safekeepers[source]);
                    lock (_lock)
                    {
                        _core.OnRecoveredWal(need.From, wal, recordEnds.ToArray());
                        Drain();
                    }
                    return;
                }
                catch (WalDecodeException e)
                {
                    _log.LogError("safekeeper {Safekeeper} sent damaged WAL for [{From}, {To}) of {TenantId}/{TimelineId}, not using it: {Error}",
                        _options.Safekeepers[source], need.From, need.To, _options.TenantId, _options.TimelineId, e.Message);
                }
                catch (RpcException e)
                {
                    if (e.FirstAvailableLsn() is { } first)
                        removedBelow = removedBelow is { } r ? Lsn.Min(r, first) : first;
                    _log.LogWarning("WAL recovery from safekeeper {Safekeeper} failed: {Error}", _options.Safekeepers[source], e.Message);
                }
            }
            if (removedBelow is { } start)
            {
                bool moved;
                lock (_lock)
                {
                    moved = _core.OnPeerWalRemoved(start);
                    Drain();
                }
                if (moved)
                {
                    _log.LogWarning("WAL from {From} is trimmed on the peers: lagging safekeepers start their WAL at {LocalStartLsn} on {TenantId}/{TimelineId}",
                        need.From, start, _options.TenantId, _options.TimelineId);
                    return;
                }
            }
            await Task.Delay(_options.ReconnectDelay, _stop.Token);
        }
        catch (OperationCanceledException) { }
        finally
        {
            lock (_lock) _recovering = false;
            if (!_stop.IsCancellationRequested) AfterStep();
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        lock (_lock)
            foreach (var o in _outbound) o?.Writer.TryComplete();
        try { await Task.WhenAll(_links).WaitAsync(TimeSpan.FromSeconds(5)); } catch (Exception) { }
        lock (_lock)
        {
            foreach (var list in _commitWaiters.Values)
                foreach (var w in list) w.TrySetCanceled();
            _commitWaiters.Clear();
        }
    }
}
