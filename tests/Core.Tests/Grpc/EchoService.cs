using System.Collections.Concurrent;
using Google.Protobuf;
using Grpc.Core;
using Storage.Core.Auth;
using Storage.Core.Errors;
using Storage.Core.Rpc;
using Storage.Proto.Test;

namespace Storage.Core.Tests.Grpc;

/// <summary>
/// The test service "storage.test.Echo": fail_with answers with that status (text as detail),
/// fail_kind throws the domain exception of that kind, delay_ms waits on the call's token (so
/// deadlines and cancellation are observable), repeat sizes the reply.
/// </summary>
internal sealed class EchoService : Echo.EchoBase
{
    /// <summary>Text of each call whose handler saw its CancellationToken fire.</summary>
    public ConcurrentQueue<string> CancelledCalls { get; } = new();

    public TaskCompletionSource<string> FirstCancellation { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Set when a handler starts waiting out a request's delay (so a test can cancel a call the server really has).</summary>
    public TaskCompletionSource<string> FirstDelayStarted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Text "tenant:ID" asks the authenticated caller to act on tenant ID.</summary>
    [Allow(Scope.Pageserver, Scope.Compute)]
    public override async Task<EchoReply> Echo(EchoRequest request, ServerCallContext context)
    {
        if (request.Text.StartsWith("tenant:", StringComparison.Ordinal))
            AuthInterceptor.CallerOf(context).RequireTenant(request.Text["tenant:".Length..]);
        await DelayAndFailAsync(request, context);
        ByteString payload = request.Repeat > 0 ? ByteString.CopyFrom(new byte[request.Repeat]) : request.Payload;
        return new EchoReply { Text = request.Text, Payload = payload };
    }

    public override async Task Stream(EchoRequest request, IServerStreamWriter<EchoReply> writer, ServerCallContext context)
    {
        for (int i = 0; i < request.Repeat; i++)
            await writer.WriteAsync(new EchoReply { Text = request.Text, Index = i, Payload = request.Payload });
        await DelayAndFailAsync(request, context);
    }

    public override async Task Chat(IAsyncStreamReader<EchoRequest> reader, IServerStreamWriter<EchoReply> writer, ServerCallContext context)
    {
        int index = 0;
        await foreach (var request in reader.ReadAllAsync(context.CancellationToken))
        {
            await DelayAndFailAsync(request, context);
            await writer.WriteAsync(new EchoReply { Text = request.Text, Index = index++, Payload = request.Payload });
        }
    }

    private async Task DelayAndFailAsync(EchoRequest request, ServerCallContext context)
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
            throw new RpcException(new Status((StatusCode)request.FailWith, request.Text));
        if (request.FailKind.Length > 0)
            throw request.FailKind switch
            {
                "stale-term" => new StaleTermException(42, request.Text),
                "wal-removed" => new WalRemovedException(new Lsn(0x100), new Lsn(0x0200_0000), 3),
                var kind => new ServiceException(Enum.Parse<FailureKind>(kind), request.Text),
            };
    }
}
