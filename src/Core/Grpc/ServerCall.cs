using System.Net;
using Google.Protobuf;
using Microsoft.AspNetCore.Http;

namespace Storage.Core.Grpc;

/// <summary>
/// Per-call server state: the cancellation that combines client abort and deadline, and the
/// message reader/writer over Kestrel's request and response pipes.
/// </summary>
internal sealed class ServerCall : IDisposable
{
    private readonly HttpContext _http;
    private readonly GrpcServerOptions _options;
    private readonly CancellationTokenSource? _deadlineCts;
    private readonly CancellationTokenSource _linkedCts;

    /// <param name="serverStopping">Fires when the server shuts down, ending long-lived calls.</param>
    public ServerCall(HttpContext http, GrpcServerOptions options, TimeSpan? timeout, CancellationToken serverStopping)
    {
        _http = http;
        _options = options;
        DateTimeOffset? deadline = null;
        if (timeout is { } t)
        {
            // A separate source for the deadline tells us afterwards *why* the token fired.
            deadline = DateTimeOffset.UtcNow + t;
            _deadlineCts = new CancellationTokenSource(t);
            _linkedCts = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted, serverStopping, _deadlineCts.Token);
        }
        else
        {
            _linkedCts = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted, serverStopping);
        }
        Context = new GrpcCallContext(_linkedCts.Token, deadline, FormatPeer(http.Connection), http.Request.Headers);
    }

    public GrpcCallContext Context { get; }

    public bool DeadlineExpired => _deadlineCts?.IsCancellationRequested == true;

    public bool ClientAborted => _http.RequestAborted.IsCancellationRequested;

    public ValueTask<T?> ReadMessageAsync<T>(MessageParser<T> parser, CancellationToken ct)
        where T : class, IMessage<T>
    {
        return PipeMessageFraming.ReadAsync(_http.Request.BodyReader, parser, _options.MaxReceiveMessageSize, Combine(ct));
    }

    /// <summary>Reads the single request of a unary or server-streaming call, insisting on exactly one.</summary>
    public async ValueTask<T> ReadSingleMessageAsync<T>(MessageParser<T> parser)
        where T : class, IMessage<T>
    {
        T message = await ReadMessageAsync(parser, default).ConfigureAwait(false)
            ?? throw new RpcException(GrpcStatusCode.Internal, "Incomplete request: the request stream ended without a message");
        if (await ReadMessageAsync(parser, default).ConfigureAwait(false) is not null)
            throw new RpcException(GrpcStatusCode.Internal, "The request stream of a unary-request method contained more than one message");
        return message;
    }

    public async ValueTask WriteMessageAsync<T>(T message, CancellationToken ct)
        where T : class, IMessage<T>
    {
        ArgumentNullException.ThrowIfNull(message);
        await PipeMessageFraming.WriteAsync(_http.Response.BodyWriter, message, _options.MaxSendMessageSize, Combine(ct)).ConfigureAwait(false);
    }

    public void Dispose()
    {
        _linkedCts.Dispose();
        _deadlineCts?.Dispose();
    }

    // The common case passes no token of its own: use the call's token without allocating.
    private CancellationToken Combine(CancellationToken ct) =>
        ct.CanBeCanceled && ct != Context.CancellationToken ? ct : Context.CancellationToken;

    private static string FormatPeer(ConnectionInfo connection)
    {
        IPAddress? address = connection.RemoteIpAddress;
        if (address is null)
            return "unknown";
        return address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6
            ? $"ipv6:[{address}]:{connection.RemotePort}"
            : $"ipv4:{address}:{connection.RemotePort}";
    }
}

/// <summary>The handler's view of the request stream of a duplex call.</summary>
internal sealed class ServerStreamReader<T>(ServerCall call, MessageParser<T> parser) : IGrpcStreamReader<T>
    where T : class, IMessage<T>
{
    public ValueTask<T?> ReadAsync(CancellationToken ct = default) => call.ReadMessageAsync(parser, ct);

    public IAsyncEnumerable<T> ReadAllAsync(CancellationToken ct = default) => GrpcStreamReaderExtensions.ReadAllFrom(this, ct);
}

/// <summary>The handler's view of the response stream.</summary>
internal sealed class ServerStreamWriter<T>(ServerCall call) : IGrpcStreamWriter<T>
    where T : class, IMessage<T>
{
    public ValueTask WriteAsync(T message, CancellationToken ct = default) => call.WriteMessageAsync(message, ct);
}
