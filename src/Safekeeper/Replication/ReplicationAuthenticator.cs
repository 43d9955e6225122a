using Storage.Core.Auth;
using Storage.Core.Errors;

namespace Storage.Safekeeper.Replication;

/// <summary>
/// Checks a replication connection's password, which is a token (as Neon's safekeepers take JWTs
/// as the libpq password): valid for this cluster, of a scope that may read a timeline's WAL (a
/// compute of that tenant, a pageserver, an operator).
/// </summary>
internal sealed class ReplicationAuthenticator(TokenValidator validator)
{
    public async Task<Caller> AuthenticateAsync(string password, string tenantId)
    {
        if (string.IsNullOrWhiteSpace(password))
            throw new ReplicationError(SqlStates.InvalidPassword, "token authentication failed: no token (the password must be a token)", fatal: true, reason: "no_token");
        Caller caller;
        try { caller = await validator.ValidateAsync("Bearer " + password.Trim()); }
        catch (ServiceException e)
        {
            throw new ReplicationError(SqlStates.InvalidPassword, $"token authentication failed: {e.Message}", fatal: true, reason: "bad_token");
        }
        if (caller.Scope is not (Scope.Compute or Scope.Pageserver or Scope.Admin))
            throw new ReplicationError(SqlStates.InvalidAuthorization, $"a {ScopeNames.Name(caller.Scope)} token may not stream WAL", fatal: true, reason: "scope");
        try { caller.RequireTenant(tenantId); }
        catch (ServiceException e) { throw new ReplicationError(SqlStates.InvalidAuthorization, e.Message, fatal: true, reason: "tenant"); }
        return caller;
    }
}
