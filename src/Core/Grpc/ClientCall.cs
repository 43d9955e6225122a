using System.Net;
using System.Net.Http.Headers;
using Google.Protobuf;

namespace Storage.Core.Grpc;

/// <summary>
/// One client call: sends the HTTP/2 request, reads response messages and the final status,
/// and turns every way a call can fail into an <see cref="RpcException"/>.
/// </summary>
internal sealed class ClientCall<TReq, TResp> : IGrpcStreamReader<TResp>, IDisposable
    where TReq : class, IMessage<TReq>
    where TResp : class, IMessage<TResp>
{
    private readonly HttpClient _client;
    private readonly Uri _uri;
    private readonly GrpcMethod<TReq, TResp> _method;
    private readonly CallOptions _options;
    private readonly int _maxReceiveSize;
    // Cancelled by the caller's token, the timeout, a per-read token or Dispose; also aborts the HTTP/2 stream.
    private readonly CancellationTokenSource _cts;
    private HttpRequestMessage? _request;
    private Task<HttpResponseMessage>? _sendTask;
    private HttpResponseMessage? _response;
    private StreamMessageReader? _reader;
    private volatile RpcException? _failure;
    private volatile bool _completed;
    private volatile bool _cancelledByRead;
    private volatile bool _disposed;

    public ClientCall(HttpClient client, Uri uri, GrpcMethod<TReq, TResp> method, CallOptions options, int maxReceiveSize)
    {
        _client = client;
        _uri = uri;
        _method = method;
        _options = options;
        _maxReceiveSize = maxReceiveSize;
        _cts = options.CancellationToken.CanBeCanceled
            ? CancellationTokenSource.CreateLinkedTokenSource(options.CancellationToken)
            : new CancellationTokenSource();
    }

    /// <summary>The final error once the call failed, so request-stream writes can report it too.</summary>
    public RpcException? Failure => _failure;

    public bool IsCompleted => _completed;

    /// <summary>Duplex request body; closed when the call ends so blocked writers wake up.</summary>
    public DuplexRequestContent? RequestContent { get; private set; }

    public void Start(HttpContent content)
    {
        content.Headers.TryAddWithoutValidation("Content-Type", GrpcProtocol.ContentType);
        RequestContent = content as DuplexRequestContent;
        var request = new HttpRequestMessage(HttpMethod.Post, _uri)
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = content,
        };
        request.Headers.TE.Add(new TransferCodingWithQualityHeaderValue("trailers"));
        if (_options.Timeout is { } timeout)
        {
            request.Headers.TryAddWithoutValidation(GrpcProtocol.TimeoutHeader, GrpcTimeout.Format(timeout));
            _cts.CancelAfter(timeout);
        }
        _request = request;
        _sendTask = _client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, _cts.Token);
    }

    public async ValueTask<TResp?> ReadAsync(CancellationToken ct = default)
    {
        if (_failure is { } failure)
            throw failure;
        if (_completed)
            return null;
        if (_disposed)
            throw Fail(new ObjectDisposedException(nameof(DuplexCall<TReq, TResp>)));
        // Cancelling one read cancels the whole call; only pay for the registration when it can fire.
        CancellationTokenRegistration registration = ct.CanBeCanceled
            ? ct.Register(static state => ((ClientCall<TReq, TResp>)state!).CancelFromRead(), this)
            : default;
        try
        {
            _reader ??= await OpenResponseAsync().ConfigureAwait(false);
            if (_reader is null)
                return null; // trailers-only response with status OK
            TResp? message = await _reader.ReadAsync(_method.ResponseParser, _cts.Token).ConfigureAwait(false);
            if (message is null)
                CompleteFromTrailers();
            return message;
        }
        catch (Exception ex)
        {
            throw Fail(ex);
        }
        finally
        {
            registration.Dispose();
        }
    }

    public IAsyncEnumerable<TResp> ReadAllAsync(CancellationToken ct = default) => GrpcStreamReaderExtensions.ReadAllFrom(this, ct);

    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        // Cancelling an unfinished call makes SocketsHttpHandler send RST_STREAM to the server.
        if (!_completed || _failure is not null)
            _cts.Cancel();
        RequestContent?.Close();
        _response?.Dispose();
        _request?.Dispose();
        _cts.Dispose();
    }

    private void CancelFromRead()
    {
        _cancelledByRead = true;
        // Another thread may have disposed the call while this read was pending: nothing left to cancel.
        try { _cts.Cancel(); }
        catch (ObjectDisposedException) { }
    }

    private async ValueTask<StreamMessageReader?> OpenResponseAsync()
    {
        HttpResponseMessage response = await _sendTask!.ConfigureAwait(false);
        _response = response;
        // Trailers-only: the server answered with the status in the headers and no body.
        if (response.Headers.Contains(GrpcProtocol.StatusHeader))
        {
            CompleteWithStatus(response.Headers);
            return null;
        }
        if (response.StatusCode != HttpStatusCode.OK)
            throw new RpcException(FromHttpStatus(response.StatusCode), $"Bad gRPC response: HTTP status {(int)response.StatusCode} {response.ReasonPhrase}");
        string? contentType = response.Content.Headers.ContentType?.ToString();
        if (!GrpcProtocol.IsGrpcContentType(contentType))
            throw new RpcException(GrpcStatusCode.Internal, $"Bad gRPC response: content-type '{contentType}' is not application/grpc");
        Stream stream = await response.Content.ReadAsStreamAsync(_cts.Token).ConfigureAwait(false);
        return new StreamMessageReader(stream, _maxReceiveSize);
    }

    private void CompleteFromTrailers()
    {
        if (!_response!.TrailingHeaders.Contains(GrpcProtocol.StatusHeader))
            throw new RpcException(GrpcStatusCode.Internal, "The response ended without a grpc-status trailer");
        CompleteWithStatus(_response.TrailingHeaders);
    }

    private void CompleteWithStatus(HttpHeaders headers)
    {
        _completed = true;
        RequestContent?.Close();
        GrpcStatusCode status = GrpcProtocol.ParseStatus(FirstValue(headers, GrpcProtocol.StatusHeader));
        if (status != GrpcStatusCode.OK)
            throw new RpcException(status, GrpcMessageEncoding.Decode(FirstValue(headers, GrpcProtocol.MessageHeader)));
    }

    /// <summary>Records the call's final error (the first one wins) and aborts the HTTP/2 stream.</summary>
    private RpcException Fail(Exception ex)
    {
        RpcException error = ex switch
        {
            RpcException rpc => rpc,
            _ when _cts.IsCancellationRequested => CancellationError(ex),
            _ => new RpcException(GrpcStatusCode.Unavailable, $"Call to {_uri} failed: {Describe(ex)}", ex),
        };
        if (_failure is null)
            _failure = error;
        _completed = true;
        RequestContent?.Close();
        if (!_disposed)
        {
            _cts.Cancel();
            _response?.Dispose();
        }
        return _failure;
    }

    private RpcException CancellationError(Exception ex)
    {
        if (_disposed)
            return new RpcException(GrpcStatusCode.Cancelled, "The call was disposed", ex);
        if (_cancelledByRead || _options.CancellationToken.IsCancellationRequested)
            return new RpcException(GrpcStatusCode.Cancelled, "The call was cancelled by the caller", ex);
        return new RpcException(GrpcStatusCode.DeadlineExceeded, $"Deadline exceeded: no status within {_options.Timeout}", ex);
    }

    private static string Describe(Exception ex)
    {
        string text = ex.Message;
        for (Exception? inner = ex.InnerException; inner is not null; inner = inner.InnerException)
            text += $" ({inner.Message})";
        return text;
    }

    private static string? FirstValue(HttpHeaders headers, string name) =>
        headers.TryGetValues(name, out var values) ? values.FirstOrDefault() : null;

    /// <summary>The mapping from the gRPC spec for HTTP errors that carry no grpc-status.</summary>
    private static GrpcStatusCode FromHttpStatus(HttpStatusCode code) => (int)code switch
    {
        400 => GrpcStatusCode.Internal,
        401 => GrpcStatusCode.Unauthenticated,
        403 => GrpcStatusCode.PermissionDenied,
        404 => GrpcStatusCode.Unimplemented,
        429 or 502 or 503 or 504 => GrpcStatusCode.Unavailable,
        _ => GrpcStatusCode.Unknown,
    };
}
