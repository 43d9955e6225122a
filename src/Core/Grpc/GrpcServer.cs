using System.Net;
using Google.Protobuf;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Storage.Core.Grpc;

/// <summary>
/// A gRPC server on Kestrel: HTTP/2 cleartext for gRPC calls, plus an optional HTTP/1.1
/// endpoint for plain GET handlers (metrics, admin JSON). Map methods before StartAsync.
/// </summary>
public sealed class GrpcServer : IAsyncDisposable
{
    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(3);
    // Calls get this long to finish on their own before long-lived streams are told to stop.
    private static readonly TimeSpan DrainGrace = TimeSpan.FromMilliseconds(500);

    private readonly GrpcServerOptions _options;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private readonly Dictionary<string, ServerMethodHandler> _methods = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Func<HttpContext, Task>> _httpGets = new(StringComparer.Ordinal);
    // Part of every call's CancellationToken: fires during StopAsync so streaming handlers return.
    private readonly CancellationTokenSource _stopping = new();
    private WebApplication? _app;
    private ListenOptions? _grpcListen;
    private ListenOptions? _httpListen;
    private bool _stopped;

    public GrpcServer(GrpcServerOptions options, ILoggerFactory loggerFactory)
    {
        _options = options ?? throw new ArgumentNullException(nameof(options));
        ArgumentNullException.ThrowIfNull(options.GrpcEndpoint);
        _loggerFactory = loggerFactory ?? throw new ArgumentNullException(nameof(loggerFactory));
        _logger = loggerFactory.CreateLogger<GrpcServer>();
    }

    /// <summary>The bound gRPC address (the real port when 0 was asked for); valid after StartAsync.</summary>
    public IPEndPoint GrpcAddress => _grpcListen?.IPEndPoint ?? throw new InvalidOperationException("The server is not started");

    public IPEndPoint? HttpAddress => _httpListen?.IPEndPoint;

    public void MapUnary<TReq, TResp>(GrpcMethod<TReq, TResp> method, Func<TReq, GrpcCallContext, Task<TResp>> handler)
        where TReq : class, IMessage<TReq>
        where TResp : class, IMessage<TResp>
    {
        ArgumentNullException.ThrowIfNull(handler);
        AddMethod(method.Path, MethodType.Unary, method.Type, new UnaryMethodHandler<TReq, TResp>(method, handler));
    }

    public void MapServerStreaming<TReq, TResp>(GrpcMethod<TReq, TResp> method, Func<TReq, IGrpcStreamWriter<TResp>, GrpcCallContext, Task> handler)
        where TReq : class, IMessage<TReq>
        where TResp : class, IMessage<TResp>
    {
        ArgumentNullException.ThrowIfNull(handler);
        AddMethod(method.Path, MethodType.ServerStreaming, method.Type, new ServerStreamingMethodHandler<TReq, TResp>(method, handler));
    }

    public void MapDuplex<TReq, TResp>(GrpcMethod<TReq, TResp> method, Func<IGrpcStreamReader<TReq>, IGrpcStreamWriter<TResp>, GrpcCallContext, Task> handler)
        where TReq : class, IMessage<TReq>
        where TResp : class, IMessage<TResp>
    {
        ArgumentNullException.ThrowIfNull(handler);
        AddMethod(method.Path, MethodType.DuplexStreaming, method.Type, new DuplexMethodHandler<TReq, TResp>(method, handler));
    }

    /// <summary>A GET handler served on <see cref="GrpcServerOptions.HttpEndpoint"/> (HTTP/1.1).</summary>
    public void MapHttpGet(string path, Func<HttpContext, Task> handler)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(handler);
        ThrowIfStarted();
        _httpGets.Add(path, handler);
    }

    public async Task StartAsync(CancellationToken ct = default)
    {
        ThrowIfStarted();
        WebApplicationBuilder builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.Services.AddSingleton<ILoggerFactory>(new WarningOnlyLoggerFactory(_loggerFactory));
        builder.WebHost.UseKestrelCore().ConfigureKestrel(ConfigureKestrel);
        if (_options.InlineScheduling)
            builder.Services.Configure<SocketTransportOptions>(o => o.UnsafePreferInlineScheduling = true);
        WebApplication app = builder.Build();
        app.Run(DispatchAsync);
        _app = app;
        await app.StartAsync(ct).ConfigureAwait(false);
        _logger.LogInformation("gRPC server listening on {GrpcAddress} (HTTP/2), HTTP on {HttpAddress}", GrpcAddress, HttpAddress?.ToString() ?? "-");
    }

    /// <summary>
    /// Stops accepting calls and lets running ones finish briefly; then cancels the handlers still
    /// running (their calls end with UNAVAILABLE), and after a final bound aborts the connections.
    /// </summary>
    public async Task StopAsync()
    {
        if (_app is null || _stopped)
            return;
        _stopped = true;
        using var timeout = new CancellationTokenSource(StopTimeout);
        try
        {
            Task stop = _app.StopAsync(timeout.Token);
            if (await Task.WhenAny(stop, Task.Delay(DrainGrace)).ConfigureAwait(false) != stop)
                _stopping.Cancel();
            await stop.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // The grace period ran out; Kestrel has aborted the remaining connections.
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        if (_app is not null)
            await _app.DisposeAsync().ConfigureAwait(false);
        _stopping.Dispose();
    }

    private void ConfigureKestrel(KestrelServerOptions kestrel)
    {
        kestrel.AddServerHeader = false;
        // gRPC streams live long and carry any amount of data: no body size or data rate limits.
        kestrel.Limits.MaxRequestBodySize = null;
        kestrel.Limits.MinRequestBodyDataRate = null;
        kestrel.Limits.MinResponseDataRate = null;
        // Big windows so streaming many small messages is never flow-control bound.
        kestrel.Limits.Http2.MaxStreamsPerConnection = 1000;
        kestrel.Limits.Http2.InitialConnectionWindowSize = 16 * 1024 * 1024;
        kestrel.Limits.Http2.InitialStreamWindowSize = 8 * 1024 * 1024;
        kestrel.Limits.Http2.MaxFrameSize = 1024 * 1024;
        kestrel.Limits.Http2.KeepAlivePingDelay = TimeSpan.FromSeconds(20);
        kestrel.Limits.Http2.KeepAlivePingTimeout = TimeSpan.FromSeconds(20);

        kestrel.Listen(_options.GrpcEndpoint, listen =>
        {
            listen.Protocols = HttpProtocols.Http2;
            _grpcListen = listen;
        });
        if (_options.HttpEndpoint is { } httpEndpoint)
        {
            kestrel.Listen(httpEndpoint, listen =>
            {
                listen.Protocols = HttpProtocols.Http1;
                _httpListen = listen;
            });
        }
    }

    // The gRPC endpoint only speaks HTTP/2 and the admin endpoint only HTTP/1.1, so the protocol tells them apart.
    private Task DispatchAsync(HttpContext http) =>
        HttpProtocol.IsHttp2(http.Request.Protocol) ? HandleGrpcAsync(http) : HandleHttpAsync(http);

    private Task HandleHttpAsync(HttpContext http)
    {
        if (!HttpMethods.IsGet(http.Request.Method) && !HttpMethods.IsHead(http.Request.Method))
        {
            http.Response.StatusCode = StatusCodes.Status405MethodNotAllowed;
            return Task.CompletedTask;
        }
        if (!_httpGets.TryGetValue(http.Request.Path.Value ?? "/", out var handler))
        {
            http.Response.StatusCode = StatusCodes.Status404NotFound;
            return Task.CompletedTask;
        }
        return handler(http);
    }

    private async Task HandleGrpcAsync(HttpContext http)
    {
        HttpRequest request = http.Request;
        HttpResponse response = http.Response;
        response.ContentType = GrpcProtocol.ContentType;

        // Problems we can see from the headers alone get an immediate trailers-only answer.
        if (!GrpcProtocol.IsGrpcContentType(request.ContentType))
        {
            response.StatusCode = StatusCodes.Status415UnsupportedMediaType;
            WriteStatus(response, GrpcStatusCode.Internal, $"Content-Type '{request.ContentType}' is not supported; expected '{GrpcProtocol.ContentType}'");
            return;
        }
        if (!HttpMethods.IsPost(request.Method))
        {
            WriteStatus(response, GrpcStatusCode.Internal, $"gRPC requires POST, got {request.Method}");
            return;
        }
        string path = request.Path.Value ?? "";
        if (!_methods.TryGetValue(path, out var method))
        {
            WriteStatus(response, GrpcStatusCode.Unimplemented, $"Method '{path}' is not implemented by this server");
            return;
        }
        string? encoding = request.Headers[GrpcProtocol.EncodingHeader];
        if (!string.IsNullOrEmpty(encoding) && encoding != "identity")
        {
            WriteStatus(response, GrpcStatusCode.Unimplemented, $"Unsupported grpc-encoding '{encoding}'; only 'identity' is supported");
            return;
        }
        TimeSpan? timeout = null;
        string? timeoutText = request.Headers[GrpcProtocol.TimeoutHeader];
        if (timeoutText is not null)
        {
            if (!GrpcTimeout.TryParse(timeoutText, out var parsed))
            {
                WriteStatus(response, GrpcStatusCode.Internal, $"Invalid grpc-timeout header '{timeoutText}'");
                return;
            }
            timeout = parsed;
        }

        // Each message must reach the wire as soon as it is written.
        http.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();

        using var call = new ServerCall(http, _options, timeout, _stopping.Token);
        GrpcStatusCode status = GrpcStatusCode.OK;
        string detail = "";
        try
        {
            await method.InvokeAsync(call).ConfigureAwait(false);
        }
        catch (RpcException ex)
        {
            (status, detail) = (ex.Status, ex.Detail);
        }
        catch (Exception) when (call.DeadlineExpired)
        {
            (status, detail) = (GrpcStatusCode.DeadlineExceeded, "Deadline exceeded");
        }
        catch (Exception) when (_stopping.IsCancellationRequested && !call.ClientAborted)
        {
            (status, detail) = (GrpcStatusCode.Unavailable, "The server is shutting down");
        }
        catch (Exception) when (call.ClientAborted)
        {
            // The client is gone; the status below is for completeness only.
            (status, detail) = (GrpcStatusCode.Cancelled, "The call was cancelled by the client");
        }
        catch (Exception ex)
        {
            _logger.LogError(ex, "gRPC handler for {Path} failed", path);
            (status, detail) = (GrpcStatusCode.Unknown, $"Exception was thrown by handler: {ex.GetType().Name}: {ex.Message}");
        }
        if (status != GrpcStatusCode.OK)
            _logger.LogDebug("gRPC call {Path} ended with {Status}: {Detail}", path, status, detail);
        WriteStatus(response, status, detail);
    }

    /// <summary>
    /// Trailers-only (status in the headers) when nothing was sent yet, otherwise HTTP/2 trailers.
    /// Kestrel sends either when the request delegate returns.
    /// </summary>
    private static void WriteStatus(HttpResponse response, GrpcStatusCode status, string detail)
    {
        string code = GrpcProtocol.FormatStatus(status);
        if (!response.HasStarted)
        {
            response.Headers[GrpcProtocol.StatusHeader] = code;
            if (detail.Length > 0)
                response.Headers[GrpcProtocol.MessageHeader] = GrpcMessageEncoding.Encode(detail);
            return;
        }
        response.AppendTrailer(GrpcProtocol.StatusHeader, code);
        if (detail.Length > 0)
            response.AppendTrailer(GrpcProtocol.MessageHeader, GrpcMessageEncoding.Encode(detail));
    }

    private void AddMethod(string path, MethodType expected, MethodType declared, ServerMethodHandler handler)
    {
        ThrowIfStarted();
        if (expected != declared)
            throw new ArgumentException($"Method {path} is declared {declared} but mapped as {expected}");
        _methods.Add(path, handler);
    }

    private void ThrowIfStarted()
    {
        if (_app is not null)
            throw new InvalidOperationException("Map methods before starting the server");
    }
}
