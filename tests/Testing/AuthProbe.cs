using Grpc.Core;
using Grpc.Net.Client;
using Storage.Core.Auth;
using Storage.Core.Rpc;

namespace Storage.Testing;

/// <summary>
/// Calls one method of a running service with every kind of bad token (none, garbage, expired,
/// signed by another key, a scope the method does not allow, a compute token of another tenant) and
/// checks each is refused with the status and a message that says why.
/// </summary>
public static class AuthProbe
{
    private static readonly string OtherTenant = new('e', 32);

    /// <param name="call">The call, on the channel it is given.</param>
    /// <param name="wrongScope">A scope the method does not allow.</param>
    /// <param name="tenantBound">The method acts on one tenant's data: a compute token of another tenant must be refused too.</param>
    public static async Task AssertRefusedAsync(Uri service, Func<GrpcChannel, Task> call, Scope wrongScope, bool tenantBound)
    {
        var secrets = TestAuth.Secrets;
        var expired = new TokenIssuer(SigningKey.ReadPrivate(secrets.PrivateKeyFile), new PastTime(DateTimeOffset.UtcNow.AddDays(-2)));
        var otherKey = new TokenIssuer(SigningKey.Generate());
        List<(string Case, string? Token, StatusCode Expected, string Reason)> cases =
        [
            ("no token", null, StatusCode.Unauthenticated, "no token"),
            ("garbage", "garbage.not.a-token", StatusCode.Unauthenticated, "malformed"),
            ("expired", expired.Issue(Scope.Admin, "old", TimeSpan.FromHours(1)), StatusCode.Unauthenticated, "expired"),
            ("another key", otherKey.Issue(Scope.Admin, "intruder", TimeSpan.FromHours(1)), StatusCode.Unauthenticated, "signature"),
            ("wrong scope", Issue(wrongScope), StatusCode.PermissionDenied, "may not"),
        ];
        if (tenantBound) cases.Add(("another tenant", TestAuth.ComputeTokens.For(OtherTenant), StatusCode.PermissionDenied, "may not act on tenant"));
        foreach (var (name, token, expected, reason) in cases)
            for (int attempt = 1; ; attempt++)
            {
                using var channel = GrpcChannels.Create(service, token);
                try { await call(channel); }
                catch (RpcException refused) when (refused.StatusCode == expected && refused.Status.Detail.Contains(reason, StringComparison.Ordinal)) { break; }
                // A streaming call refused while its first message is still being sent may end as a
                // reset stream (CANCELLED, no detail): that says nothing about the token, so it is tried again.
                catch (RpcException reset) when (reset.StatusCode == StatusCode.Cancelled && attempt < 3) { continue; }
                catch (RpcException other) { throw new InvalidOperationException($"{name}: expected {expected} saying '{reason}', got {other.StatusCode}: {other.Status.Detail}"); }
                throw new InvalidOperationException($"{name}: the call was served");
            }
    }

    private static string Issue(Scope scope) =>
        scope == Scope.Compute ? TestAuth.ComputeTokens.For(OtherTenant) : TestAuth.Secrets.Issuer().Issue(scope, "probe", TimeSpan.FromHours(1));

    private sealed class PastTime(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;
    }
}
