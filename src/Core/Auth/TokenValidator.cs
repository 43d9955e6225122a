using System.Security.Cryptography;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Storage.Core.Errors;

namespace Storage.Core.Auth;

/// <summary>
/// Checks a bearer token against the cluster's public key: signature (ES256 only), issuer, expiry,
/// and a known scope. Every failure is UNAUTHENTICATED with a message that says which check failed
/// (never the token itself).
/// </summary>
public sealed class TokenValidator(ECDsa publicKey, TimeProvider? time = null)
{
    private readonly JsonWebTokenHandler _handler = new();
    private readonly TimeProvider _time = time ?? TimeProvider.System;

    public TokenValidationParameters Parameters { get; } = new()
    {
        ValidIssuer = ScopeNames.Issuer,
        ValidateAudience = false,
        IssuerSigningKey = new ECDsaSecurityKey(publicKey),
        ValidAlgorithms = [SecurityAlgorithms.EcdsaSha256],
        RequireExpirationTime = true,
        ClockSkew = TimeSpan.FromSeconds(30),
    };

    /// <summary>The caller an "authorization: Bearer ..." header speaks for.</summary>
    public async Task<Caller> ValidateAsync(string? authorization)
    {
        if (string.IsNullOrWhiteSpace(authorization))
            throw Refused("no token: this API needs an 'authorization: Bearer <token>' header");
        if (!authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
            throw Refused("malformed authorization header: expected 'Bearer <token>'");
        var token = authorization["Bearer ".Length..].Trim();
        var parameters = Parameters.Clone();
        parameters.LifetimeValidator = (notBefore, expires, _, p) =>
        {
            var now = _time.GetUtcNow().UtcDateTime;
            return (notBefore is null || notBefore.Value - p.ClockSkew <= now) && expires is { } e && now <= e + p.ClockSkew;
        };
        var result = await _handler.ValidateTokenAsync(token, parameters);
        if (!result.IsValid)
            throw Refused(result.Exception switch
            {
                SecurityTokenInvalidLifetimeException or SecurityTokenExpiredException => "the token has expired (or is not valid yet)",
                SecurityTokenSignatureKeyNotFoundException or SecurityTokenInvalidSignatureException => "the token's signature does not match this cluster's key",
                SecurityTokenMalformedException or ArgumentException => "the token is malformed",
                SecurityTokenInvalidIssuerException => "the token was not issued by this cluster",
                _ => $"the token is not valid ({result.Exception?.GetType().Name})",
            });
        var scopeName = result.Claims.TryGetValue(ScopeNames.ScopeClaim, out var s) ? s as string : null;
        var scope = ScopeNames.Parse(scopeName) ?? throw Refused($"the token has an unknown scope '{scopeName}'");
        var tenant = result.Claims.TryGetValue(ScopeNames.TenantClaim, out var t) ? t as string : null;
        if (scope == Scope.Compute && string.IsNullOrEmpty(tenant)) throw Refused("a compute token without a tenant");
        var subject = result.Claims.TryGetValue("sub", out var sub) ? sub as string ?? "" : "";
        return new Caller(scope, tenant, subject);
    }

    private static ServiceException Refused(string why) => new(FailureKind.Unauthenticated, why);
}
