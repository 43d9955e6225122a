using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Storage.Core.Api;
using Storage.Core.Grpc;
using Storage.Proto.Pageserver;

namespace Storage.StorageController;

/// <summary>What a heartbeat last heard from a pageserver: when, and the timelines it holds.</summary>
public sealed record Heartbeat(DateTime AtUtc, IReadOnlyList<TimelineInfo> Timelines);

/// <summary>
/// Whether a pageserver is online, from when it last answered and how the heartbeats since failed:
/// refused connections (nothing listens: the process is gone) condemn it after the failure timeout,
/// timeouts (it may only be slow) after the longer unresponsive timeout.
/// </summary>
public static class Liveness
{
    public static bool IsOnline(DateTime lastAnswerUtc, bool refusing, DateTime nowUtc, ControllerOptions options) =>
        nowUtc - lastAnswerUtc < (refusing ? options.FailureTimeout : options.UnresponsiveTimeout);
}

/// <summary>
/// Heartbeats every known pageserver (ListTimelines, each node on its own task so a hung node
/// delays no other) and says which are online (<see cref="Liveness"/>).
/// </summary>
public sealed class NodeHealth(PlacementBook book, ControllerOptions options, ControllerMetrics metrics, ILogger log) : IAsyncDisposable
{
    private readonly ConcurrentDictionary<string, Heartbeat> _last = new();
    private readonly ConcurrentDictionary<string, bool> _refusing = new(); // the latest heartbeat was refused
    private readonly ConcurrentDictionary<string, Task> _loops = new();
    private readonly CancellationTokenSource _stop = new();
    // A controller that just started has heard nobody yet: give every node one timeout to answer.
    private readonly DateTime _startedUtc = DateTime.UtcNow;

    /// <summary>Starts heartbeating every registered node (and any registered later: call again).</summary>
    public void Watch()
    {
        foreach (var node in book.Nodes)
            _loops.GetOrAdd(node.Id, id => Task.Run(() => LoopAsync(id, _stop.Token)));
    }

    public Heartbeat? Last(string nodeId) => _last.GetValueOrDefault(nodeId);

    public bool IsOnline(string nodeId)
    {
        var seen = _last.TryGetValue(nodeId, out var heartbeat) ? heartbeat.AtUtc : _startedUtc;
        return Liveness.IsOnline(seen, _refusing.GetValueOrDefault(nodeId), DateTime.UtcNow, options);
    }

    public IReadOnlyList<string> OnlineNodes() => book.Nodes.Select(n => n.Id).Where(IsOnline).ToList();

    /// <summary>A node that just (re)started is online now; what it held before its restart is forgotten.</summary>
    public void Registered(string nodeId)
    {
        _last[nodeId] = new Heartbeat(DateTime.UtcNow, []);
        _refusing[nodeId] = false;
    }

    /// <summary>A node answered a call about one timeline: that is as good as a heartbeat for it.</summary>
    public void Observed(string nodeId, TimelineInfo timeline)
    {
        var others = _last.GetValueOrDefault(nodeId)?.Timelines.Where(t => !t.Timeline.Equals(timeline.Timeline)) ?? [];
        _last[nodeId] = new Heartbeat(DateTime.UtcNow, others.Append(timeline).ToList());
        _refusing[nodeId] = false;
    }

    private async Task LoopAsync(string nodeId, CancellationToken ct)
    {
        bool wasOnline = true;
        while (!ct.IsCancellationRequested)
        {
            var node = book.Node(nodeId);
            if (node is null) return;
            try
            {
                // A slow answer still counts: the deadline is half the time a silent node is given.
                var timeout = TimeSpan.FromMilliseconds(Math.Max(200, options.UnresponsiveTimeout.TotalMilliseconds / 2));
                var reply = await PageserverClient.ListTimelinesAsync(new Uri(node.Address), timeout, ct);
                _last[nodeId] = new Heartbeat(DateTime.UtcNow, reply.Timelines.ToList());
                _refusing[nodeId] = false;
                metrics.HeartbeatOk(nodeId);
            }
            catch (Exception) when (ct.IsCancellationRequested) { return; } // stopping: the call in flight was cancelled
            catch (Exception e)
            {
                _refusing[nodeId] = RpcException.IsRefusal(e);
                metrics.HeartbeatFailed(nodeId);
                log.LogDebug("heartbeat to pageserver {NodeId} failed: {Error}", nodeId, e.Message);
            }
            bool online = IsOnline(nodeId);
            if (online != wasOnline)
            {
                var why = _refusing.GetValueOrDefault(nodeId)
                    ? $"connections refused for {options.FailureTimeout.TotalMilliseconds} ms"
                    : $"no answer for {options.UnresponsiveTimeout.TotalMilliseconds} ms";
                log.LogWarning("pageserver {NodeId} is {State}", nodeId, online ? "back online" : $"offline ({why})");
            }
            metrics.Online(nodeId, online);
            wasOnline = online;
            try { await Task.Delay(options.HeartbeatInterval, ct); } catch (OperationCanceledException) { return; }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await Task.WhenAll(_loops.Values);
        _stop.Dispose();
    }
}
