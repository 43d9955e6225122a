using Microsoft.AspNetCore.Http;

namespace Storage.Core.Grpc;

/// <summary>What a server handler knows about the call it is serving.</summary>
public sealed class GrpcCallContext
{
    private readonly IHeaderDictionary _headers;

    internal GrpcCallContext(CancellationToken cancellationToken, DateTimeOffset? deadline, string peer, IHeaderDictionary headers)
    {
        CancellationToken = cancellationToken;
        Deadline = deadline;
        Peer = peer;
        _headers = headers;
    }

    /// <summary>Fires when the client cancels or disconnects, or the deadline passes.</summary>
    public CancellationToken CancellationToken { get; }

    /// <summary>From the client's grpc-timeout header; null when the client set none.</summary>
    public DateTimeOffset? Deadline { get; }

    /// <summary>The client's address, like "ipv4:127.0.0.1:50123".</summary>
    public string Peer { get; }

    /// <summary>A request header (metadata) value, or null when absent.</summary>
    public string? GetHeader(string name)
    {
        return _headers.TryGetValue(name, out var value) && value.Count > 0 ? value.ToString() : null;
    }
}
