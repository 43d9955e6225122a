using System.Collections.Concurrent;
using Google.Protobuf;
using Storage.Core.Grpc;
using Storage.Proto.Test;

namespace Storage.Core.Tests.Grpc;

/// <summary>The test contract "storage.test.Echo", shared with the Python interop scripts.</summary>
internal static class EchoMethods
{
    public const string Service = "storage.test.Echo";

    public static readonly GrpcMethod<EchoRequest, EchoReply> Echo =
        new(MethodType.Unary, Service, "Echo", EchoRequest.Parser, EchoReply.Parser);

    public static readonly GrpcMethod<EchoRequest, EchoReply> Stream =
        new(MethodType.ServerStreaming, Service, "Stream", EchoRequest.Parser, EchoReply.Parser);

    public static readonly GrpcMethod<EchoRequest, EchoReply> Chat =
        new(MethodType.DuplexStreaming, Service, "Chat", EchoRequest.Parser, EchoReply.Parser);

    /// <summary>Not mapped on any server: for the Unimplemented tests.</summary>
    public static readonly GrpcMethod<EchoRequest, EchoReply> Missing =
        new(MethodType.Unary, Service, "Missing", EchoRequest.Parser, EchoReply.Parser);
}

/// <summary>
/// Echo handlers: fail_with answers with that status (text as detail), delay_ms waits on the
/// call's token (so deadlines and cancellation are observable), repeat sizes the reply stream.
/// </summary>
internal sealed class EchoService
{
    /// <summary>Text of each call whose handler saw its CancellationToken fire.</summary>
    public ConcurrentQueue<string> CancelledCalls { get; } = new();

    public TaskCompletionSource<string> FirstCancellation { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Set when a handler starts waiting out a request's delay (so a test can cancel a call the server really has).</summary>
    public TaskCompletionSource<string> FirstDelayStarted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public void MapTo(GrpcServer server)
    {
        server.MapUnary(EchoMethods.Echo, EchoAsync);
        server.MapServerStreaming(EchoMethods.Stream, StreamAsync);
        server.MapDuplex(EchoMethods.Chat, ChatAsync);
    }

    private async Task<EchoReply> EchoAsync(EchoRequest request, GrpcCallContext context)
    {
        await DelayAndFailAsync(request, context);
        // repeat doubles as "make the reply this many payload bytes" for the size-limit tests.
        ByteString payload = request.Repeat > 0 ? ByteString.CopyFrom(new byte[request.Repeat]) : request.Payload;
        return new EchoReply { Text = request.Text, Payload = payload };
    }

    private async Task StreamAsync(EchoRequest request, IGrpcStreamWriter<EchoReply> writer, GrpcCallContext context)
    {
        for (int i = 0; i < request.Repeat; i++)
            await writer.WriteAsync(new EchoReply { Text = request.Text, Index = i, Payload = request.Payload });
        await DelayAndFailAsync(request, context);
    }

    private async Task ChatAsync(IGrpcStreamReader<EchoRequest> reader, IGrpcStreamWriter<EchoReply> writer, GrpcCallContext context)
    {
        int index = 0;
        await foreach (EchoRequest request in reader.ReadAllAsync())
        {
            await DelayAndFailAsync(request, context);
            await writer.WriteAsync(new EchoReply { Text = request.Text, Index = index++, Payload = request.Payload });
        }
    }

    private async Task DelayAndFailAsync(EchoRequest request, GrpcCallContext context)
    {
        if (request.DelayMs > 0)
        {
            FirstDelayStarted.TrySetResult(request.Text);
            try
            {
                await Task.Delay(request.DelayMs, context.CancellationToken);
            }
            catch (OperationCanceledException)
            {
                CancelledCalls.Enqueue(request.Text);
                FirstCancellation.TrySetResult(request.Text);
                throw;
            }
        }
        if (request.FailWith != 0)
            throw new RpcException((GrpcStatusCode)request.FailWith, request.Text);
    }
}
