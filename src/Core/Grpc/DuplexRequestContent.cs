using System.Net;
using System.Threading.Channels;

namespace Storage.Core.Grpc;

/// <summary>
/// The request body of a duplex call: HttpClient calls SerializeToStreamAsync once, and it pumps
/// already-serialized frames from a channel onto the HTTP/2 stream until the caller completes.
/// Frames queued together are written together and flushed once, so a burst costs one flush,
/// while a lone message is flushed immediately.
/// </summary>
internal sealed class DuplexRequestContent : HttpContent
{
    // Bounded so a writer faster than the network waits instead of buffering without limit.
    private readonly Channel<PooledFrame> _frames = Channel.CreateBounded<PooledFrame>(
        new BoundedChannelOptions(1024) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });

    /// <summary>Queues a frame; false when the stream is already closed.</summary>
    public ValueTask<bool> TryEnqueueAsync(PooledFrame frame, CancellationToken ct)
    {
        if (_frames.Writer.TryWrite(frame))
            return ValueTask.FromResult(true);
        return EnqueueSlowAsync(frame, ct);
    }

    /// <summary>Half-close: the pump sends what is queued, then ends the request stream.</summary>
    public void Complete() => _frames.Writer.TryComplete();

    /// <summary>The call ended: stop accepting frames. Already queued ones may still be sent.</summary>
    public void Close() => _frames.Writer.TryComplete();

    protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
    {
        try
        {
            // Sends the request headers now, so the server starts the call before the first message.
            await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
            ChannelReader<PooledFrame> reader = _frames.Reader;
            while (await reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
            {
                while (reader.TryRead(out PooledFrame frame))
                {
                    try
                    {
                        await stream.WriteAsync(frame.Memory, cancellationToken).ConfigureAwait(false);
                    }
                    finally
                    {
                        frame.Return();
                    }
                }
                await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            // Writers blocked on a full channel must not wait forever once nobody reads it.
            _frames.Writer.TryComplete();
        }
    }

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
        SerializeToStreamAsync(stream, context, CancellationToken.None);

    // A streaming body has no length: HTTP/2 DATA frames until END_STREAM.
    protected override bool TryComputeLength(out long length)
    {
        length = -1;
        return false;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
            Close();
        base.Dispose(disposing);
    }

    private async ValueTask<bool> EnqueueSlowAsync(PooledFrame frame, CancellationToken ct)
    {
        try
        {
            await _frames.Writer.WriteAsync(frame, ct).ConfigureAwait(false);
            return true;
        }
        catch (ChannelClosedException)
        {
            return false;
        }
    }
}

/// <summary>The caller's side of a duplex request stream: serializes at once, then queues the bytes.</summary>
internal sealed class ClientRequestStream<TReq, TResp>(ClientCall<TReq, TResp> call, DuplexRequestContent content, int maxSendSize)
    : IGrpcRequestStream<TReq>
    where TReq : class, Google.Protobuf.IMessage<TReq>
    where TResp : class, Google.Protobuf.IMessage<TResp>
{
    private bool _completed;

    public async ValueTask WriteAsync(TReq message, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(message);
        if (_completed)
            throw new InvalidOperationException("The request stream was already completed");
        ThrowIfCallEnded();
        // Serialized now, so the caller may reuse or change the message as soon as this returns.
        PooledFrame frame = MessageSerializer.ToPooledFrame(message, maxSendSize);
        if (!await content.TryEnqueueAsync(frame, ct).ConfigureAwait(false))
        {
            frame.Return();
            ThrowIfCallEnded();
            throw new RpcException(GrpcStatusCode.Unavailable, "The request stream is closed: the call ended or the connection was lost");
        }
    }

    public ValueTask CompleteAsync()
    {
        _completed = true;
        content.Complete();
        return ValueTask.CompletedTask;
    }

    private void ThrowIfCallEnded()
    {
        if (call.Failure is { } failure)
            throw failure;
        if (call.IsCompleted)
            throw new RpcException(GrpcStatusCode.Unavailable, "The server already completed the call");
    }
}
