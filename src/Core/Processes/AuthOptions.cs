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

    /// <summary>The validator of callers' tokens, or null when this service was started without a key.</summary>
    public TokenValidator? Validator() => PublicKeyFile is null ? null : new TokenValidator(SigningKey.ReadPublic(PublicKeyFile));

    /// <summary>This service's own token, or null when it has none.</summary>
    public string? Token() => TokenFile is null ? null : SecretFile.Read(TokenFile).Trim();

    public IEnumerable<string> Validate()
    {
        if (PublicKeyFile is not null && !File.Exists(PublicKeyFile)) yield return $"--auth-public-key: no file '{PublicKeyFile}'";
        if (TokenFile is not null && !File.Exists(TokenFile)) yield return $"--token-file: no file '{TokenFile}'";
    }
}
