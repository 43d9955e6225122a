using Grpc.Core;
using Storage.Core.Auth;
using Storage.Core.Errors;

namespace Storage.Core.Rpc;

/// <summary>The per-call checks a handler makes on its authenticated caller (beyond the method's scopes).</summary>
public static class CallerChecks
{
    /// <summary>A compute token acts only on its own tenant's timelines (PERMISSION_DENIED otherwise).</summary>
    public static void RequireTenant(this ServerCallContext context, string tenantId) =>
        AuthInterceptor.CallerOf(context).RequireTenant(tenantId);

    /// <summary>
    /// A node acts only as itself (a pageserver registers and validates only under its own id, the
    /// subject of its token); an admin may act as any.
    /// </summary>
    public static void RequireSubject(this ServerCallContext context, string subject)
    {
        var caller = AuthInterceptor.CallerOf(context);
        if (caller.Scope != Scope.Admin && !string.Equals(caller.Subject, subject, StringComparison.Ordinal))
            throw new ServiceException(FailureKind.PermissionDenied, $"a token of '{caller.Subject}' may not act as '{subject}'");
    }
}
