using System.Collections.Concurrent;

namespace Storage.ComputeProxy.Tests;

/// <summary>
/// A stand-in for the control plane: endpoint ids map to addresses; a queue of addresses per
/// endpoint simulates a compute that moves (the next one is handed out after an Invalidate).
/// </summary>
public sealed class TestLocator : IComputeLocator
{
    private readonly ConcurrentDictionary<string, ConcurrentQueue<ComputeAddress>> _addresses = new();
    public ConcurrentQueue<string> Located { get; } = new();
    public ConcurrentQueue<(string Endpoint, ComputeAddress Address)> Invalidated { get; } = new();
    public int SessionsStarted;
    public int SessionsEnded;

    /// <summary>Before answering, e.g. to hold the client as a waking compute does.</summary>
    public Func<string, CancellationToken, Task>? BeforeAnswer { get; set; }

    /// <summary>The endpoint is served at these addresses, one after the other as each is invalidated.</summary>
    public void Set(string endpointId, params ComputeAddress[] addresses) =>
        _addresses[endpointId] = new ConcurrentQueue<ComputeAddress>(addresses);

    public async Task<ComputeAddress> LocateAsync(string endpointId, CancellationToken ct)
    {
        Located.Enqueue(endpointId);
        if (BeforeAnswer != null) await BeforeAnswer(endpointId, ct);
        if (!_addresses.TryGetValue(endpointId, out var queue) || !queue.TryPeek(out var address))
            throw new UnknownEndpointException(endpointId);
        return address;
    }

    public void Invalidate(string endpointId, ComputeAddress address)
    {
        Invalidated.Enqueue((endpointId, address));
        // Move on to the next address, keeping the last one.
        if (_addresses.TryGetValue(endpointId, out var queue) && queue.Count > 1 && queue.TryPeek(out var head) && head == address)
            queue.TryDequeue(out _);
    }

    public void SessionStarted(string endpointId) => Interlocked.Increment(ref SessionsStarted);
    public void SessionEnded(string endpointId) => Interlocked.Increment(ref SessionsEnded);
}
