using System.Net;

namespace Storage.Core.Grpc;

public sealed record GrpcServerOptions
{
    /// <summary>HTTP/2 cleartext (h2c) endpoint for gRPC; port 0 picks a free port.</summary>
    public IPEndPoint GrpcEndpoint { get; init; } = new(IPAddress.Loopback, 0);

    /// <summary>Optional HTTP/1.1 endpoint for /metrics and admin JSON; port 0 picks a free port.</summary>
    public IPEndPoint? HttpEndpoint { get; init; }

    public int MaxReceiveMessageSize { get; init; } = GrpcProtocol.DefaultMaxMessageSize;

    public int MaxSendMessageSize { get; init; } = GrpcProtocol.DefaultMaxMessageSize;

    /// <summary>
    /// Run Kestrel's connection processing and the handlers' continuations on the socket's I/O
    /// thread instead of hopping to the thread pool (lower latency). Only for handlers that never
    /// block: a blocked handler stalls every connection served by that I/O thread.
    /// </summary>
    public bool InlineScheduling { get; init; }
}
