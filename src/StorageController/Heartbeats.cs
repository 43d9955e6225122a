using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Storage.Core.Api;
using Storage.Core.Processes;
using Storage.Core.Rpc;

namespace Storage.StorageController;

/// <summary>
/// Heartbeats every known pageserver once per interval (ListTimelines over the process's one
/// channel to it, each node on its own task so a hung node delays no other) and tells
/// <see cref="NodeHealth"/> what it heard. A node registered later is picked up within an interval
/// (its registration counts as an answer meanwhile).
/// </summary>
public sealed class Heartbeats(PlacementBook book, NodeHealth health, ControllerOptions options, ControllerMetrics metrics,
    ILogger<Heartbeats> log, TimeProvider time) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken ct)
    {
        var loops = new Dictionary<string, Task>();
        while (!ct.IsCancellationRequested)
        {
            foreach (var node in book.Nodes)
                if (!loops.ContainsKey(node.Id)) loops[node.Id] = Task.Run(() => LoopAsync(node.Id, ct), CancellationToken.None);
            try { await Task.Delay(options.HeartbeatInterval, time, ct); } catch (OperationCanceledException) { break; }
        }
        await Task.WhenAll(loops.Values);
    }

    private async Task LoopAsync(string nodeId, CancellationToken ct)
    {
        bool wasOnline = true;
        while (!ct.IsCancellationRequested && book.Node(nodeId) is { } node)
        {
            await HeartbeatAsync(node, ct);
            if (ct.IsCancellationRequested) return;
            bool online = health.IsOnline(nodeId);
            if (online != wasOnline)
            {
                var why = health.IsRefusing(nodeId)
                    ? $"connections refused for {options.FailureTimeout.TotalMilliseconds} ms"
                    : $"no answer for {options.UnresponsiveTimeout.TotalMilliseconds} ms";
                log.LogWarning("pageserver {NodeId} is {State}", nodeId, online ? "back online" : $"offline ({why})");
            }
            metrics.Online(nodeId, online);
            wasOnline = online;
            try { await Task.Delay(options.HeartbeatInterval, time, ct); } catch (OperationCanceledException) { return; }
        }
    }

    /// <summary>One heartbeat to <paramref name="node"/>; what it heard goes to <see cref="NodeHealth"/>.</summary>
    public async Task HeartbeatAsync(NodeRecord node, CancellationToken ct)
    {
        // A slow answer still counts: the deadline is half the time a silent node is given.
        var timeout = TimeSpan.FromMilliseconds(Math.Max(200, options.UnresponsiveTimeout.TotalMilliseconds / 2));
        var started = time.GetTimestamp();
        try
        {
            var reply = await PageserverClient.ListTimelinesAsync(new Uri(node.Address), timeout, ct);
            health.Answered(node.Id, reply.Timelines.ToList());
            metrics.HeartbeatOk(node.Id, time.GetElapsedTime(started));
        }
        catch (Exception) when (ct.IsCancellationRequested) { } // stopping: the call in flight was cancelled
        catch (Exception e)
        {
            health.Failed(node.Id, refused: RpcErrors.IsRefusal(e));
            metrics.HeartbeatFailed(node.Id);
            log.LogDebug("heartbeat to pageserver {NodeId} failed: {Error}", node.Id, e.Message);
        }
    }
}
