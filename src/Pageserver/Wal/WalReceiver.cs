using System.Collections.Concurrent;
using Grpc.Core;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Storage.Core;
using Storage.Core.Api;
using Storage.Proto.Safekeeper;

namespace Storage.Pageserver.Wal;

/// <summary>Where the receiver is and what it does with WAL: the timeline side of ingest.</summary>
internal interface IWalSink
{
    /// <summary>Where the next WAL byte is needed from.</summary>
    Lsn NextByte { get; }
    /// <summary>End of the last whole record ingested.</summary>
    Lsn IngestedLsn { get; }
    /// <summary>
    /// Takes committed WAL starting at <paramref name="start"/> (= NextByte). Throws
    /// <see cref="CorruptWalException"/> for WAL that does not decode (the sink is then rewound to
    /// its last whole record), <see cref="WalSinkPausedException"/> when it cannot take WAL for now.
    /// </summary>
    void Receive(Lsn start, ReadOnlySpan<byte> bytes, Lsn commitLsn, string source);
}

/// <summary>The sink cannot take WAL for now (e.g. its disk is full); it has said why. Retry later from NextByte.</summary>
internal sealed class WalSinkPausedException(string message, Exception inner) : Exception(message, inner);

/// <summary>
/// Streams a timeline's committed WAL from the safekeeper with the highest commit LSN. It switches
/// safekeeper when the stream breaks, or when it has been silent while another safekeeper holds
/// newer committed WAL (a stalled source); errors are retried with capped backoff. Safekeepers only
/// serve committed WAL to a reader without a term, so nothing past commit_lsn is ever ingested.
/// A source whose WAL does not decode (damaged on its disk) is left out until another source has
/// delivered past the bad LSN, or for <c>corruptSourceExclusion</c> at most (it may be repaired).
/// Calls go over the process's shared channel to each safekeeper. Its timeline starts and stops it.
/// </summary>
internal sealed class WalReceiver(string tenantId, string timelineId, IReadOnlyList<Uri> safekeepers, IWalSink sink, ILogger logger, TimeProvider time,
    TimeSpan? stallTimeout = null, TimeSpan? corruptSourceExclusion = null) : BackgroundService
{
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(5);
    private readonly TimeSpan _stallTimeout = stallTimeout ?? TimeSpan.FromSeconds(3);
    private readonly TimeSpan _corruptSourceExclusion = corruptSourceExclusion ?? TimeSpan.FromSeconds(60);
    // Sources that sent corrupt WAL: the LSN of the bad record and until when they are left out.
    private readonly ConcurrentDictionary<Uri, (Lsn BadLsn, DateTimeOffset Until)> _excluded = new();
    private readonly TimelineKey _key = SafekeeperClient.Key(tenantId, timelineId);

    /// <summary>The safekeeper currently streamed from, or null.</summary>
    public Uri? Source { get; private set; }

    protected override async Task ExecuteAsync(CancellationToken ct)
    {
        await Task.Yield(); // StartAsync returns at once; the receiver runs on the thread pool
        var backoff = TimeSpan.FromMilliseconds(100);
        while (!ct.IsCancellationRequested)
        {
            try
            {
                var (best, commit) = await BestSourceAsync(exclude: null, ct);
                if (best is null || commit <= sink.NextByte)
                {
                    await Task.Delay(backoff, time, ct);
                    backoff = best is null ? Next(backoff) : TimeSpan.FromMilliseconds(100);
                    continue;
                }
                Source = best;
                await StreamAsync(best, ct);
                backoff = TimeSpan.FromMilliseconds(100);
            }
            catch (Exception) when (ct.IsCancellationRequested) { return; } // stopping: the stream or a probe was cancelled
            catch (CorruptWalException e) when (Source is { } bad)
            {
                _excluded[bad] = (e.Lsn, time.GetUtcNow() + _corruptSourceExclusion);
                logger.LogError("WAL of {TenantId}/{TimelineId} from safekeeper {Source} is corrupt at {Lsn}: {Error}. Nothing from there on was kept: "
                    + "ingest is back at {Resume}; switching to another safekeeper (this one is left out until another delivers past that LSN, {Seconds} s at most)",
                    tenantId, timelineId, bad, e.Lsn, e.Message, sink.NextByte, _corruptSourceExclusion.TotalSeconds);
                Source = null;
                backoff = TimeSpan.FromMilliseconds(100);
            }
            catch (WalSinkPausedException e)
            {
                // The sink logged why (once per episode); the source is fine: retry with backoff.
                logger.LogDebug("WAL receive of {TenantId}/{TimelineId} paused at {Lsn}: {Error}", tenantId, timelineId, sink.NextByte, e.Message);
                Source = null;
                await DelayQuietly(backoff, ct);
                backoff = Next(backoff);
            }
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
        var request = new ReadWalRequest { Timeline = _key, StartLsn = sink.NextByte.Value, ProposerTerm = 0 };
        // No deadline: the stream lasts as long as the safekeeper has WAL to send; a stall is noticed below.
        using var stream = SafekeeperClient.For(source).ReadWal(request, cancellationToken: call.Token);
        logger.LogInformation("streaming WAL of {TenantId}/{TimelineId} from {Source} at {Lsn}", tenantId, timelineId, source, sink.NextByte);
        var pending = stream.ResponseStream.MoveNext(call.Token);
        while (true)
        {
            var done = await Task.WhenAny(pending, Task.Delay(_stallTimeout, time, ct));
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
            if (!await pending) throw new EndOfStreamException($"safekeeper {source} ended the WAL stream");
            var chunk = stream.ResponseStream.Current;
            sink.Receive(new Lsn(chunk.StartLsn), chunk.Data.Span, new Lsn(chunk.CommitLsn), source.ToString());
            pending = stream.ResponseStream.MoveNext(call.Token);
        }
    }

    /// <summary>The reachable safekeeper with the highest commit LSN (other than <paramref name="exclude"/> and those that sent corrupt WAL).</summary>
    private async Task<(Uri? Source, Lsn Commit)> BestSourceAsync(Uri? exclude, CancellationToken ct)
    {
        var probes = safekeepers.Where(s => s != exclude && !IsExcluded(s)).Select(async s =>
        {
            try { return (Source: s, Commit: new Lsn((await SafekeeperClient.StatusAsync(s, _key, TimeSpan.FromSeconds(2), ct)).CommitLsn)); }
            catch (Exception e) when (e is RpcException or IOException or HttpRequestException or OperationCanceledException && !ct.IsCancellationRequested)
            { return (Source: (Uri?)null, Commit: Lsn.Zero)!; }
        }).ToList();
        var results = await Task.WhenAll(probes);
        var reachable = results.Where(r => r.Source != null).ToList();
        if (reachable.Count == 0) return (null, Lsn.Zero); // none answers (or every one is left out): wait
        var best = reachable.MaxBy(r => r.Commit.Value);
        return (best.Source, best.Commit);
    }

    /// <summary>Whether <paramref name="source"/> sent corrupt WAL that no other source has delivered past yet (and not too long ago).</summary>
    private bool IsExcluded(Uri source)
    {
        if (!_excluded.TryGetValue(source, out var exclusion)) return false;
        if (sink.IngestedLsn > exclusion.BadLsn || time.GetUtcNow() >= exclusion.Until)
        {
            _excluded.TryRemove(source, out _);
            return false;
        }
        return true;
    }

    private static TimeSpan Next(TimeSpan backoff) => TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, MaxBackoff.Ticks));

    private async Task DelayQuietly(TimeSpan delay, CancellationToken ct)
    {
        try { await Task.Delay(delay, time, ct); } catch (OperationCanceledException) { }
    }

    /// <summary>Stops receiving; WAL being handed to the sink is taken whole first.</summary>
    public async Task StopAsync()
    {
        await StopAsync(CancellationToken.None);
        Dispose();
    }
}
