using System.Net;
using Google.Protobuf;

namespace Storage.Core.Grpc;

/// <summary>
/// A client connection to one gRPC server over HTTP/2 cleartext (prior knowledge). One HttpClient
/// serves all calls, which HTTP/2 multiplexes over few connections.
/// </summary>
public sealed class GrpcChannel : IDisposable
{
    private readonly Uri _address;
    private readonly GrpcChannelOptions _options;
    private readonly HttpClient _client;

    public GrpcChannel(Uri address, GrpcChannelOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (address.Scheme != Uri.UriSchemeHttp)
            throw new ArgumentException($"Only http:// (HTTP/2 cleartext) addresses are supported, got {address}", nameof(address));
        _address = address;
        _options = options ?? new GrpcChannelOptions();
        var handler = new SocketsHttpHandler
        {
            UseProxy = false,
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            ConnectTimeout = _options.ConnectTimeout,
            EnableMultipleHttp2Connections = true,
            // Pings notice a dead peer on an otherwise idle long-lived stream.
            KeepAlivePingDelay = TimeSpan.FromSeconds(15),
            KeepAlivePingTimeout = TimeSpan.FromSeconds(10),
            KeepAlivePingPolicy = HttpKeepAlivePingPolicy.WithActiveRequests,
            PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
            // Large stream window so streaming responses are not flow-control bound.
            InitialHttp2StreamWindowSize = 8 * 1024 * 1024,
        };
        _client = new HttpClient(handler, disposeHandler: true)
        {
            Timeout = Timeout.InfiniteTimeSpan, // deadlines are per call
            DefaultRequestVersion = HttpVersion.Version20,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
    }

    public async Task<TResp> UnaryAsync<TReq, TResp>(GrpcMethod<TReq, TResp> method, TReq request, CallOptions options = default)
        where TReq : class, IMessage<TReq>
        where TResp : class, IMessage<TResp>
    {
        ArgumentNullException.ThrowIfNull(request);
        byte[] frame = MessageSerializer.ToFrame(request, _options.MaxSendMessageSize);
        using var call = CreateCall(method, options);
        call.Start(new ByteArrayContent(frame));
        TResp response = await call.ReadAsync().ConfigureAwait(false)
            ?? throw new RpcException(GrpcStatusCode.Internal, "The server completed the call with OK but sent no response message");
        if (await call.ReadAsync().ConfigureAwait(false) is not null)
            throw new RpcException(GrpcStatusCode.Internal, "The server sent more than one response message to a unary call");
        return response;
    }

    public ServerStreamingCall<TResp> ServerStreaming<TReq, TResp>(GrpcMethod<TReq, TResp> method, TReq request, CallOptions options = default)
        where TReq : class, IMessage<TReq>
        where TResp : class, IMessage<TResp>
    {
        ArgumentNullException.ThrowIfNull(request);
        byte[] frame = MessageSerializer.ToFrame(request, _options.MaxSendMessageSize);
        var call = CreateCall(method, options);
        call.Start(new ByteArrayContent(frame));
        return new ServerStreamingCall<TResp>(call, call);
    }

    public DuplexCall<TReq, TResp> Duplex<TReq, TResp>(GrpcMethod<TReq, TResp> method, CallOptions options = default)
        where TReq : class, IMessage<TReq>
        where TResp : class, IMessage<TResp>
    {
        var call = CreateCall(method, options);
        var content = new DuplexRequestContent();
        call.Start(content);
        return new DuplexCall<TReq, TResp>(new ClientRequestStream<TReq, TResp>(call, content, _options.MaxSendMessageSize), call, call);
    }

    public void Dispose() => _client.Dispose();

    private ClientCall<TReq, TResp> CreateCall<TReq, TResp>(GrpcMethod<TReq, TResp> method, CallOptions options)
        where TReq : class, IMessage<TReq>
        where TResp : class, IMessage<TResp>
    {
        ArgumentNullException.ThrowIfNull(method);
        return new ClientCall<TReq, TResp>(_client, new Uri(_address, method.Path), method, options, _options.MaxReceiveMessageSize);
    }
}
