using System.Collections.Concurrent;

namespace Storage.ComputeProxy.ControlPlane;

/// <summary>Client sessions per endpoint as the proxy reports them, and when each endpoint was last used.</summary>
public sealed class SessionTracker(TimeProvider time)
{
    private sealed class Activity
    {
        public int Sessions;
        public long LastUsedTicks;
    }

    private readonly ConcurrentDictionary<string, Activity> _endpoints = new();

    public void Started(string endpointId)
    {
        var a = Get(endpointId);
        Interlocked.Increment(ref a.Sessions);
        Touch(endpointId);
    }

    public void Ended(string endpointId)
    {
        var a = Get(endpointId);
        // Never below zero: a proxy restart may report the end of sessions this process never saw start.
        int seen;
        do { seen = Volatile.Read(ref a.Sessions); } while (seen > 0 && Interlocked.CompareExchange(ref a.Sessions, seen - 1, seen) != seen);
        Touch(endpointId);
    }

    /// <summary>The endpoint was used (a locate, a wake): its idle time starts over.</summary>
    public void Touch(string endpointId) => Interlocked.Exchange(ref Get(endpointId).LastUsedTicks, time.GetUtcNow().UtcTicks);

    public int Sessions(string endpointId) => _endpoints.TryGetValue(endpointId, out var a) ? Volatile.Read(ref a.Sessions) : 0;

    /// <summary>How long the endpoint has had no session; zero while it has one.</summary>
    public TimeSpan IdleFor(string endpointId)
    {
        var a = Get(endpointId);
        if (Volatile.Read(ref a.Sessions) > 0) return TimeSpan.Zero;
        return time.GetUtcNow() - new DateTimeOffset(Interlocked.Read(ref a.LastUsedTicks), TimeSpan.Zero);
    }

    public void Forget(string endpointId) => _endpoints.TryRemove(endpointId, out _);

    // An endpoint first seen now (e.g. after a restart) counts as used now, not idle since 0001.
    private Activity Get(string endpointId) =>
        _endpoints.GetOrAdd(endpointId, _ => new Activity { LastUsedTicks = time.GetUtcNow().UtcTicks });
}
