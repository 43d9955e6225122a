using Microsoft.Extensions.Logging;
using Storage.Core;
using Storage.Core.Api;
using Storage.Core.Grpc;
using Storage.Proto.Safekeeper;

namespace Storage.Pageserver.Wal;

/// <summary>Where the receiver is and what it does with WAL: the timeline side of ingest.</summary>
internal interface IWalSink
{
    /// <summary>Where the next WAL byte is needed from.</summary>
    Lsn NextByte { get; }
    /// <summary>Takes committed WAL starting at <paramref name="start"/> (= NextByte).</summary>
    void Receive(Lsn start, ReadOnlySpan<byte> bytes, Lsn commitLsn, string source);
}

/// <summary>
/// Streams a timeline's committed WAL from the safekeeper with the highest commit LSN. It switches
/// safekeeper when the stream breaks, or when it has been silent while another safekeeper holds
/// newer committed WAL (a stalled source); errors are retried with capped backoff. Safekeepers only
/// serve committed WAL to a reader without a term, so nothing past commit_lsn is ever ingested.
/// </summary>
internal sealed class WalReceiver(string tenantId, string timelineId, IReadOnlyList<Uri> safekeepers, IWalSink sink, ILogger logger,
    TimeSpan? stallTimeout = null) : IAsyncDisposable
{
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(5);
    private readonly TimeSpan _stallTimeout = stallTimeout ?? TimeSpan.FromSeconds(3);
    private readonly CancellationTokenSource _stop = new();
    private readonly TimelineKey _key = SafekeeperClient.Key(tenantId, timelineId);
    private Task _loop = Task.CompletedTask;

    /// <summary>The safekeeper currently streamed from, or null.</summary>
    public Uri? Source { get; private set; }

    public void Start() => _loop = Task.Run(LoopAsync);

    private async Task LoopAsync()
    {
        var ct = _stop.Token;
        var backoff = TimeSpan.FromMilliseconds(100);
        while (!ct.IsCancellationRequested)
        {
            try
            {
                var (best, commit) = await BestSourceAsync(exclude: null, ct);
                if (best is null || commit <= sink.NextByte)
                {
                    await Task.Delay(backoff, ct);
                    backoff = best is null ? Next(backoff) : TimeSpan.FromMilliseconds(100);
                    continue;
                }
                Source = best;
                await StreamAsync(best, ct);
                backoff = TimeSpan.FromMilliseconds(100);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested) { return; }
            catch (Exception e)
            {
                logger.LogWarning("WAL receive of {TenantId}/{TimelineId} from {Source} at {Lsn} broke, switching: {Error}",
                    tenantId, timelineId, Source, sink.NextByte, e.Message);
                Source = null;
                await DelayQuietly(backoff, ct);
                backoff = Next(backoff);
            }
        }
    }

    /// <summary>Streams until the call breaks, or the source stalls while another has newer WAL.</summary>
    private async Task StreamAsync(Uri source, CancellationToken ct)
    {
        using var call = CancellationTokenSource.CreateLinkedTokenSource(ct);
        using var channel = new GrpcChannel(source);
        var request = new ReadWalRequest { Timeline = _key, StartLsn = sink.NextByte.Value, ProposerTerm = 0 };
        using var stream = channel.ServerStreaming(SafekeeperApi.ReadWal, request, new CallOptions(null, call.Token));
        logger.LogInformation("streaming WAL of {TenantId}/{TimelineId} from {Source} at {Lsn}", tenantId, timelineId, source, sink.NextByte);
        var pending = stream.ResponseStream.ReadAsync(call.Token).AsTask();
        while (true)
        {
            var done = await Task.WhenAny(pending, Task.Delay(_stallTimeout, ct));
            if (done != pending)
            {
                ct.ThrowIfCancellationRequested();
                var (best, commit) = await BestSourceAsync(exclude: source, ct);
                if (best is not null && commit > sink.NextByte)
                {
                    logger.LogWarning("WAL source {Source} of {TenantId}/{TimelineId} stalled at {Lsn} while {Other} has WAL up to {Commit}; switching",
                        source, tenantId, timelineId, sink.NextByte, best, commit);
                    await call.CancelAsync();
                    try { await pending; } catch (Exception) { /* the cancelled read */ }
                    return;
                }
                continue;
            }
            var chunk = await pending ?? throw new RpcException(GrpcStatusCode.Unavailable, "the safekeeper ended the WAL stream");
            sink.Receive(new Lsn(chunk.StartLsn), chunk.Data.Span, new Lsn(chunk.CommitLsn), source.ToString());
            pending = stream.ResponseStream.ReadAsync(call.Token).AsTask();
        }
    }

    /// <summary>The reachable safekeeper with the highest commit LSN (other than <paramref name="exclude"/>).</summary>
    private async Task<(Uri? Source, Lsn Commit)> BestSourceAsync(Uri? exclude, CancellationToken ct)
    {
        var probes = safekeepers.Where(s => s != exclude).Select(async s =>
        {
            try { return (Source: s, Commit: new Lsn((await SafekeeperClient.StatusAsync(s, _key, TimeSpan.FromSeconds(2), ct)).CommitLsn)); }
            catch (Exception e) when (e is RpcException or IOException or HttpRequestException or OperationCanceledException && !ct.IsCancellationRequested)
            { return (Source: (Uri?)null, Commit: Lsn.Zero)!; }
        }).ToList();
        var results = await Task.WhenAll(probes);
        var best = results.Where(r => r.Source != null).MaxBy(r => r.Commit.Value);
        return (best.Source, best.Commit);
    }

    private static TimeSpan Next(TimeSpan backoff) => TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, MaxBackoff.Ticks));

    private static async Task DelayQuietly(TimeSpan delay, CancellationToken ct)
    {
        try { await Task.Delay(delay, ct); } catch (OperationCanceledException) { }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try { await _loop; } catch (OperationCanceledException) { }
        _stop.Dispose();
    }
}
