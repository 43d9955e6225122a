using System.Collections.Concurrent;
using Storage.Core.Processes;
using Storage.Proto.Pageserver;

namespace Storage.StorageController;

/// <summary>What a heartbeat last heard from a pageserver: when, and the timelines it holds.</summary>
public sealed record Heartbeat(DateTimeOffset At, IReadOnlyList<TimelineInfo> Timelines);

/// <summary>
/// Whether a pageserver is online, from when it last answered and how the heartbeats since failed:
/// refused connections (nothing listens: the process is gone) condemn it after the failure timeout,
/// timeouts (it may only be slow) after the longer unresponsive timeout.
/// </summary>
public static class Liveness
{
    public static bool IsOnline(DateTimeOffset lastAnswer, bool refusing, DateTimeOffset now, ControllerOptions options) =>
        now - lastAnswer < (refusing ? options.FailureTimeout : options.UnresponsiveTimeout);
}

/// <summary>
/// Which pageservers are online (<see cref="Liveness"/>), from what was last heard of each: the
/// heartbeats (<see cref="Heartbeats"/>), registrations and answers to other calls. Time comes from
/// <paramref name="time"/>.
/// </summary>
public sealed class NodeHealth(PlacementBook book, ControllerOptions options, TimeProvider time)
{
    private readonly ConcurrentDictionary<string, Heartbeat> _last = new();
    private readonly ConcurrentDictionary<string, bool> _refusing = new(); // the latest heartbeat was refused
    // A controller that just started has heard nobody yet: give every node one timeout to answer.
    private readonly DateTimeOffset _started = time.GetUtcNow();

    public Heartbeat? Last(string nodeId) => _last.GetValueOrDefault(nodeId);

    /// <summary>Whether the latest heartbeat to the node was refused (nothing listens there).</summary>
    public bool IsRefusing(string nodeId) => _refusing.GetValueOrDefault(nodeId);

    public bool IsOnline(string nodeId)
    {
        var seen = _last.TryGetValue(nodeId, out var heartbeat) ? heartbeat.At : _started;
        return Liveness.IsOnline(seen, IsRefusing(nodeId), time.GetUtcNow(), options);
    }

    public IReadOnlyList<string> OnlineNodes() => book.Nodes.Select(n => n.Id).Where(IsOnline).ToList();

    /// <summary>A node that just (re)started is online now; what it held before its restart is forgotten.</summary>
    public void Registered(string nodeId) => Answered(nodeId, []);

    /// <summary>A heartbeat was answered: the node holds <paramref name="timelines"/>.</summary>
    public void Answered(string nodeId, IReadOnlyList<TimelineInfo> timelines)
    {
        _last[nodeId] = new Heartbeat(time.GetUtcNow(), timelines);
        _refusing[nodeId] = false;
    }

    /// <summary>A heartbeat failed: refused (<paramref name="refused"/>), or timed out or broke otherwise.</summary>
    public void Failed(string nodeId, bool refused) => _refusing[nodeId] = refused;

    /// <summary>A node answered a call about one timeline: that is as good as a heartbeat for it.</summary>
    public void Observed(string nodeId, TimelineInfo timeline)
    {
        var others = _last.GetValueOrDefault(nodeId)?.Timelines.Where(t => !t.Timeline.Equals(timeline.Timeline)) ?? [];
        Answered(nodeId, others.Append(timeline).ToList());
    }
}
