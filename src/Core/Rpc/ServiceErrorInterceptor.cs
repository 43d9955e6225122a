using Grpc.Core;
using Grpc.Core.Interceptors;
using Microsoft.Extensions.Logging;
using Storage.Core.Errors;
using Storage.Core.Storage;

namespace Storage.Core.Rpc;

/// <summary>
/// The one place where a service's failures become gRPC statuses: a <see cref="ServiceException"/>
/// by its kind (its details as trailers), a damaged file as DATA_LOSS, a full disk as
/// RESOURCE_EXHAUSTED. Anything else is a bug: INTERNAL, logged with its stack.
/// </summary>
public sealed class ServiceErrorInterceptor(ILogger<ServiceErrorInterceptor> log) : Interceptor
{
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context,
        UnaryServerMethod<TRequest, TResponse> continuation)
    {
        try { return await continuation(request, context); }
        catch (Exception e) when (Translate(e, context) is { } rpc) { throw rpc; }
    }

    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream,
        ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        try { await continuation(request, responseStream, context); }
        catch (Exception e) when (Translate(e, context) is { } rpc) { throw rpc; }
    }

    public override async Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream,
        ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation)
    {
        try { return await continuation(requestStream, context); }
        catch (Exception e) when (Translate(e, context) is { } rpc) { throw rpc; }
    }

    public override async Task DuplexStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream,
        IServerStreamWriter<TResponse> responseStream, ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        try { await continuation(requestStream, responseStream, context); }
        catch (Exception e) when (Translate(e, context) is { } rpc) { throw rpc; }
    }

    /// <summary>The status for <paramref name="e"/>; null for an RpcException (already a status) or the call's own cancellation.</summary>
    private RpcException? Translate(Exception e, ServerCallContext context)
    {
        switch (e)
        {
            case RpcException:
                return null;
            case OperationCanceledException when context.CancellationToken.IsCancellationRequested:
                return null; // the client went away or the deadline passed: the framework reports that
            case ServiceException service:
                var trailers = new Metadata();
                foreach (var (name, value) in service.Details) trailers.Add(name, value);
                return new RpcException(new Status(ToStatusCode(service.Kind), service.Message), trailers, service.Message);
            case CorruptFileException:
                return new RpcException(new Status(StatusCode.DataLoss, e.Message));
            case var _ when DiskFull.Is(e):
                return new RpcException(new Status(StatusCode.ResourceExhausted, $"disk full: {e.Message}"));
            default:
                log.LogError(e, "{Method} failed unexpectedly", context.Method);
                return new RpcException(new Status(StatusCode.Internal, $"internal error: {e.Message}"));
        }
    }

    public static StatusCode ToStatusCode(FailureKind kind) => kind switch
    {
        FailureKind.InvalidArgument => StatusCode.InvalidArgument,
        FailureKind.NotFound => StatusCode.NotFound,
        FailureKind.AlreadyExists => StatusCode.AlreadyExists,
        FailureKind.FailedPrecondition => StatusCode.FailedPrecondition,
        FailureKind.Superseded => StatusCode.Aborted,
        FailureKind.OutOfRange => StatusCode.OutOfRange,
        FailureKind.Unavailable => StatusCode.Unavailable,
        FailureKind.ResourceExhausted => StatusCode.ResourceExhausted,
        FailureKind.DataLoss => StatusCode.DataLoss,
        FailureKind.Unauthenticated => StatusCode.Unauthenticated,
        FailureKind.PermissionDenied => StatusCode.PermissionDenied,
        _ => StatusCode.Internal,
    };
}
