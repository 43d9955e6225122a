using Grpc.Core;
using Grpc.Core.Interceptors;
using Microsoft.AspNetCore.Http;
using Storage.Core.Auth;
using Storage.Core.Errors;

namespace Storage.Core.Rpc;

/// <summary>
/// Every gRPC call proves who it is before its handler runs: a valid token (else UNAUTHENTICATED)
/// whose scope the method allows with <see cref="AllowAttribute"/> (else PERMISSION_DENIED; a method
/// without one allows nobody but an admin). The caller is kept for the handler's tenant checks
/// (<see cref="CallerOf"/>). Registered after <see cref="ServiceErrorInterceptor"/>, which turns its
/// refusals into statuses.
/// </summary>
public sealed class AuthInterceptor(TokenValidator validator) : Interceptor
{
    private static readonly object CallerKey = new();

    /// <summary>The authenticated caller of a call.</summary>
    public static Caller CallerOf(ServerCallContext context) =>
        context.UserState.TryGetValue(CallerKey, out var caller) ? (Caller)caller
            : throw new InvalidOperationException("the call was not authenticated (no AuthInterceptor on this service)");

    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context,
        UnaryServerMethod<TRequest, TResponse> continuation)
    {
        await AuthenticateAsync(context);
        return await continuation(request, context);
    }

    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream,
        ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        await AuthenticateAsync(context);
        await continuation(request, responseStream, context);
    }

    public override async Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream,
        ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation)
    {
        await AuthenticateAsync(context);
        return await continuation(requestStream, context);
    }

    public override async Task DuplexStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream,
        IServerStreamWriter<TResponse> responseStream, ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        await AuthenticateAsync(context);
        await continuation(requestStream, responseStream, context);
    }

    private async Task AuthenticateAsync(ServerCallContext context)
    {
        var caller = await validator.ValidateAsync(context.RequestHeaders.GetValue("authorization"));
        var allowed = context.GetHttpContext().GetEndpoint()?.Metadata.GetMetadata<AllowAttribute>()?.Scopes ?? [Scope.Admin];
        if (!allowed.Contains(caller.Scope))
            throw new ServiceException(FailureKind.PermissionDenied,
                $"a {ScopeNames.Name(caller.Scope)} token may not call {context.Method} (allowed: {string.Join(", ", allowed.Select(ScopeNames.Name))})");
        context.UserState[CallerKey] = caller;
    }
}
