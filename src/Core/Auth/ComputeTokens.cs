namespace Storage.Core.Auth;

/// <summary>
/// Mints the tenant-bound token a compute is given with each attach (and an idle VM with each
/// prepare): with it the compute reaches its own tenant's timelines on the safekeepers and
/// pageservers, and nothing else.
/// </summary>
public sealed class ComputeTokens(TokenIssuer issuer)
{
    /// <summary>
    /// As long as an attachment may last: the compute sends it on every reconnect, and nothing
    /// renews it while PostgreSQL runs. Fencing by term, not expiry, ends an old compute.
    /// </summary>
    public static readonly TimeSpan Lifetime = TimeSpan.FromDays(365);

    public static ComputeTokens FromKeyFile(string privateKeyFile) => new(new TokenIssuer(SigningKey.ReadPrivate(privateKeyFile)));

    public string For(string tenantId, string subject = "compute") => issuer.Issue(Scope.Compute, subject, Lifetime, tenantId);
}
