using System.Collections.Concurrent;
using System.Net.Http;
using Grpc.Core;
using Grpc.Net.Client;

namespace Storage.Core.Rpc;

/// <summary>
/// One long-lived gRPC channel per peer address for the whole process: a channel multiplexes every
/// call over its HTTP/2 connections, so the heartbeats, appends and reads to a peer share a TCP
/// connection instead of opening one per call. Message size limits, keepalive and the connect
/// timeout are set here once; deadlines and cancellation come with each call.
/// </summary>
public static class GrpcChannels
{
    /// <summary>Largest message sent or received (a WAL append of one long record, a basebackup chunk).</summary>
    public const int MaxMessageSize = 64 * 1024 * 1024;

    /// <summary>A connect that takes longer fails the call: a peer that does not answer is down for this try.</summary>
    public static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(2);

    private static readonly ConcurrentDictionary<(Uri, string?), GrpcChannel> Channels = new();

    /// <summary>
    /// The token every call of this process carries unless a channel names its own (set once at
    /// start from the service's token file); null: none.
    /// </summary>
    public static string? DefaultToken { get; set; }

    /// <summary>
    /// The channel to <paramref name="address"/> whose calls carry <paramref name="token"/> (default:
    /// <see cref="DefaultToken"/>), created on first use and kept for the process's life.
    /// </summary>
    public static GrpcChannel For(Uri address, string? token = null)
    {
        if (string.IsNullOrEmpty(token)) token = DefaultToken;
        return Channels.GetOrAdd((address, token), key => Create(key.Item1, key.Item2));
    }

    /// <summary>A channel of its own (tests and tools that want to dispose of it).</summary>
    public static GrpcChannel Create(Uri address, string? token = null) => GrpcChannel.ForAddress(address, new GrpcChannelOptions
    {
        // The token goes in the authorization header of every call. Plain HTTP/2 is the transport
        // inside the cluster (loopback, or the compose network), so call credentials are allowed
        // without TLS.
        Credentials = token is null ? null : ChannelCredentials.Create(ChannelCredentials.Insecure,
            CallCredentials.FromInterceptor((_, metadata) => { metadata.Add("authorization", "Bearer " + token); return Task.CompletedTask; })),
        UnsafeUseInsecureChannelCallCredentials = token is not null,
        MaxReceiveMessageSize = MaxMessageSize,
        MaxSendMessageSize = MaxMessageSize,
        // A peer that was down is tried again soon after: the defaults (1 s growing to 2 min) would
        // fail calls to a restarted safekeeper or pageserver for minutes.
        InitialReconnectBackoff = TimeSpan.FromMilliseconds(100),
        MaxReconnectBackoff = TimeSpan.FromSeconds(1),
        HttpHandler = new SocketsHttpHandler
        {
            ConnectTimeout = ConnectTimeout,
            // Notice a peer that vanished (a SIGKILLed host, a partition) on an idle connection too.
            KeepAlivePingDelay = TimeSpan.FromSeconds(10),
            KeepAlivePingTimeout = TimeSpan.FromSeconds(5),
            KeepAlivePingPolicy = HttpKeepAlivePingPolicy.WithActiveRequests,
            PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
            EnableMultipleHttp2Connections = true,
        },
        DisposeHttpClient = true,
    });
}
