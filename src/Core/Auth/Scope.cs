namespace Storage.Core.Auth;

/// <summary>
/// Who a token speaks for: one kind of caller each. A service lets each of its methods be called by
/// the scopes that need it (<see cref="AllowAttribute"/>), and nothing else.
/// </summary>
public enum Scope
{
    /// <summary>An operator (storagectl): every method.</summary>
    Admin,
    /// <summary>The control plane: compute agents (attach, detach, prepare) and the storage controller.</summary>
    ControlPlane,
    /// <summary>The storage controller: pageservers (locations, heartbeats, creation).</summary>
    Controller,
    /// <summary>A pageserver: safekeepers (reading committed WAL, feedback, timelines) and the controller (registration).</summary>
    Pageserver,
    /// <summary>A compute of one tenant: its safekeepers (the WAL consensus) and its pageserver (basebackups); tenant-bound.</summary>
    Compute,
}

/// <summary>What a validated token says: its scope and, for a compute, its tenant.</summary>
public sealed record Caller(Scope Scope, string? TenantId, string Subject)
{
    /// <summary>
    /// Refuses (PERMISSION_DENIED) a tenant-bound caller acting on another tenant's data; callers of
    /// the service scopes act for every tenant.
    /// </summary>
    public void RequireTenant(string tenantId)
    {
        if (Scope == Scope.Compute && !string.Equals(TenantId, tenantId, StringComparison.Ordinal))
            throw new Errors.ServiceException(Errors.FailureKind.PermissionDenied,
                $"a compute token of tenant {TenantId} may not act on tenant {tenantId}");
    }
}

/// <summary>Marks a gRPC method (or a whole service) with the scopes allowed to call it.</summary>
[AttributeUsage(AttributeTargets.Method | AttributeTargets.Class)]
public sealed class AllowAttribute(params Scope[] scopes) : Attribute
{
    public IReadOnlyList<Scope> Scopes { get; } = [Scope.Admin, .. scopes];
}
