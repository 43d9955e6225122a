using System.Security.Cryptography;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Storage.Core.Auth;

/// <summary>Mints signed tokens (ES256 JWTs): a scope, a subject, a tenant for computes, an expiry.</summary>
public sealed class TokenIssuer(ECDsa signingKey, TimeProvider? time = null)
{
    private readonly SigningCredentials _credentials = new(new ECDsaSecurityKey(signingKey), SecurityAlgorithms.EcdsaSha256);
    private readonly TimeProvider _time = time ?? TimeProvider.System;

    /// <summary>A token for <paramref name="scope"/>; <paramref name="tenantId"/> is required for (and only for) computes.</summary>
    public string Issue(Scope scope, string subject, TimeSpan lifetime, string? tenantId = null)
    {
        if ((scope == Scope.Compute) != (tenantId is not null))
            throw new ArgumentException(scope == Scope.Compute ? "a compute token needs its tenant" : $"a {ScopeNames.Name(scope)} token is not tenant-bound");
        var now = _time.GetUtcNow().UtcDateTime;
        var claims = new Dictionary<string, object> { [ScopeNames.ScopeClaim] = ScopeNames.Name(scope) };
        if (tenantId is not null) claims[ScopeNames.TenantClaim] = tenantId;
        return new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = ScopeNames.Issuer,
            Subject = new System.Security.Claims.ClaimsIdentity([new System.Security.Claims.Claim("sub", subject)]),
            Claims = claims,
            IssuedAt = now,
            NotBefore = now.AddMinutes(-1), // clocks of the cluster's hosts may differ a little
            Expires = now + lifetime,
            SigningCredentials = _credentials,
        });
    }
}
