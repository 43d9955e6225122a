using System.Collections.Concurrent;

namespace Storage.ComputeProxy.Proxy;

/// <summary>
/// Which compute owns each backend key (BackendKeyData: process id and secret) of the sessions
/// this proxy relays, so a CancelRequest arriving on a new connection reaches that compute. In
/// memory only: it is the one piece of state a proxy restart loses, and the sessions it would
/// cancel are gone with that proxy anyway.
/// </summary>
public sealed class CancelKeyRegistry
{
    private readonly ConcurrentDictionary<string, ComputeAddress> _owners = new();

    public int Count => _owners.Count;

    public void Register(ReadOnlySpan<byte> key, ComputeAddress compute) => _owners[Convert.ToHexString(key)] = compute;

    public void Unregister(ReadOnlySpan<byte> key) => _owners.TryRemove(Convert.ToHexString(key), out _);

    public ComputeAddress? Find(ReadOnlySpan<byte> key) => _owners.TryGetValue(Convert.ToHexString(key), out var compute) ? compute : null;
}
