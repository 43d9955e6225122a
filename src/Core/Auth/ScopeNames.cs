namespace Storage.Core.Auth;

/// <summary>The claims of a token: "scope" (kebab-case names) and, for computes, "tenant_id".</summary>
public static class ScopeNames
{
    public const string ScopeClaim = "scope";
    public const string TenantClaim = "tenant_id";
    public const string Issuer = "storage";

    public static string Name(Scope scope) => scope switch
    {
        Scope.Admin => "admin",
        Scope.ControlPlane => "control-plane",
        Scope.Controller => "controller",
        Scope.Pageserver => "pageserver",
        Scope.Compute => "compute",
        _ => throw new ArgumentOutOfRangeException(nameof(scope)),
    };

    public static Scope? Parse(string? name) => name switch
    {
        "admin" => Scope.Admin,
        "control-plane" => Scope.ControlPlane,
        "controller" => Scope.Controller,
        "pageserver" => Scope.Pageserver,
        "compute" => Scope.Compute,
        _ => null,
    };
}
