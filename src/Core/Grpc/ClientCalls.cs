using Google.Protobuf;

namespace Storage.Core.Grpc;

/// <summary>A call with one request and a stream of responses. Dispose cancels it if unfinished.</summary>
public sealed class ServerStreamingCall<TResp> : IDisposable
    where TResp : class
{
    private readonly IDisposable _call;

    internal ServerStreamingCall(IGrpcStreamReader<TResp> responseStream, IDisposable call)
    {
        ResponseStream = responseStream;
        _call = call;
    }

    public IGrpcStreamReader<TResp> ResponseStream { get; }

    public void Dispose() => _call.Dispose();
}

/// <summary>A call with a stream each way. Dispose cancels it if unfinished.</summary>
public sealed class DuplexCall<TReq, TResp> : IDisposable
    where TReq : class
    where TResp : class
{
    private readonly IDisposable _call;

    internal DuplexCall(IGrpcRequestStream<TReq> requestStream, IGrpcStreamReader<TResp> responseStream, IDisposable call)
    {
        RequestStream = requestStream;
        ResponseStream = responseStream;
        _call = call;
    }

    public IGrpcRequestStream<TReq> RequestStream { get; }

    public IGrpcStreamReader<TResp> ResponseStream { get; }

    public void Dispose() => _call.Dispose();
}
