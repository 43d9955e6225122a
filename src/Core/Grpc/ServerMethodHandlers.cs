using Google.Protobuf;

namespace Storage.Core.Grpc;

/// <summary>Runs one registered method for one call; one subclass per method type.</summary>
internal abstract class ServerMethodHandler
{
    public abstract Task InvokeAsync(ServerCall call);
}

internal sealed class UnaryMethodHandler<TReq, TResp>(
    GrpcMethod<TReq, TResp> method,
    Func<TReq, GrpcCallContext, Task<TResp>> handler) : ServerMethodHandler
    where TReq : class, IMessage<TReq>
    where TResp : class, IMessage<TResp>
{
    public override async Task InvokeAsync(ServerCall call)
    {
        TReq request = await call.ReadSingleMessageAsync(method.RequestParser).ConfigureAwait(false);
        TResp response = await handler(request, call.Context).ConfigureAwait(false)
            ?? throw new InvalidOperationException($"Handler for {method.Path} returned a null response");
        await call.WriteMessageAsync(response, default).ConfigureAwait(false);
    }
}

internal sealed class ServerStreamingMethodHandler<TReq, TResp>(
    GrpcMethod<TReq, TResp> method,
    Func<TReq, IGrpcStreamWriter<TResp>, GrpcCallContext, Task> handler) : ServerMethodHandler
    where TReq : class, IMessage<TReq>
    where TResp : class, IMessage<TResp>
{
    public override async Task InvokeAsync(ServerCall call)
    {
        TReq request = await call.ReadSingleMessageAsync(method.RequestParser).ConfigureAwait(false);
        await handler(request, new ServerStreamWriter<TResp>(call), call.Context).ConfigureAwait(false);
    }
}

internal sealed class DuplexMethodHandler<TReq, TResp>(
    GrpcMethod<TReq, TResp> method,
    Func<IGrpcStreamReader<TReq>, IGrpcStreamWriter<TResp>, GrpcCallContext, Task> handler) : ServerMethodHandler
    where TReq : class, IMessage<TReq>
    where TResp : class, IMessage<TResp>
{
    public override Task InvokeAsync(ServerCall call) =>
        handler(new ServerStreamReader<TReq>(call, method.RequestParser), new ServerStreamWriter<TResp>(call), call.Context);
}
