using Storage.Core.Auth;
using Storage.Core.Hosting;

namespace Storage.Core.Processes;

/// <summary>
/// The flags of every service about tokens: the public key that checks the tokens of its callers,
/// and the file holding its own token for the calls it makes to other services.
/// </summary>
public sealed record AuthOptions
{
    [Flag("--auth-public-key", "PEM file of the cluster's public key: every API call must carry a token it verifies")]
    public string? PublicKeyFile { get; init; }

    [Flag("--token-file", "file (0600) holding this service's own token, sent on the calls it makes")]
    public string? TokenFile { get; init; }

    /// <summary>The validator of callers' tokens (the key is required: no service runs open).</summary>
    public TokenValidator Validator() =>
        new(SigningKey.ReadPublic(PublicKeyFile ?? throw new InvalidOperationException("--auth-public-key is required")));

    /// <summary>This service's own token, or null when it has none.</summary>
    public string? Token() => TokenFile is null ? null : SecretFile.Read(TokenFile).Trim();

    public IEnumerable<string> Validate()
    {
        if (PublicKeyFile is null) yield return "--auth-public-key is required: every API checks its callers' tokens (storagectl up makes the cluster's keys)";
        else if (!File.Exists(PublicKeyFile)) yield return $"--auth-public-key: no file '{PublicKeyFile}'";
        if (TokenFile is not null && !File.Exists(TokenFile)) yield return $"--token-file: no file '{TokenFile}'";
    }
}
