using System.Collections.Concurrent;
using System.Net.Http;
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

    private static readonly ConcurrentDictionary<Uri, GrpcChannel> Channels = new();

    /// <summary>The channel to <paramref name="address"/> (created on first use, kept for the process's life).</summary>
    public static GrpcChannel For(Uri address) => Channels.GetOrAdd(address, Create);

    /// <summary>A channel of its own (tests and tools that want to dispose of it).</summary>
    public static GrpcChannel Create(Uri address) => GrpcChannel.ForAddress(address, new GrpcChannelOptions
    {
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
