namespace Storage.Core.Auth;

/// <summary>
/// A cluster's key pair and the tokens of its services, in one directory, every secret 0600:
/// <c>auth_private_key.pem</c> (signs tokens: storagectl and the control plane, which mints a
/// tenant-bound token per attach), <c>auth_public_key.pem</c> (every service checks tokens with it)
/// and one <c>&lt;scope&gt;-&lt;subject&gt;.token</c> per service that calls others. Created on first
/// use, kept afterwards (tokens stay valid across restarts).
/// </summary>
public sealed class ClusterSecrets
{
    /// <summary>Tokens of the cluster's own services: as long-lived as the cluster (rotate by making a new key).</summary>
    public static readonly TimeSpan ServiceTokenLifetime = TimeSpan.FromDays(3650);

    private readonly object _lock = new();

    private ClusterSecrets(string directory) => Directory = directory;

    public string Directory { get; }
    public string PrivateKeyFile => Path.Combine(Directory, "auth_private_key.pem");
    public string PublicKeyFile => Path.Combine(Directory, "auth_public_key.pem");

    /// <summary>The secrets in <paramref name="directory"/>, making the key pair if there is none yet.</summary>
    public static ClusterSecrets CreateOrOpen(string directory)
    {
        System.IO.Directory.CreateDirectory(directory);
        var secrets = new ClusterSecrets(Path.GetFullPath(directory));
        if (!File.Exists(secrets.PrivateKeyFile))
        {
            using var key = SigningKey.Generate();
            SigningKey.WritePublic(key, secrets.PublicKeyFile);
            SigningKey.WritePrivate(key, secrets.PrivateKeyFile); // last: its presence means the pair is complete
        }
        return secrets;
    }

    /// <summary>The file holding the token of <paramref name="subject"/> (e.g. ps1, storagectl) in <paramref name="scope"/>, minted once.</summary>
    public string TokenFile(Scope scope, string subject)
    {
        if (subject.Length == 0 || subject.IndexOfAny(['/', '\\']) >= 0 || subject is "." or "..")
            throw new ArgumentException($"a token subject must be a plain name, not '{subject}'", nameof(subject));
        var path = Path.Combine(Directory, $"{ScopeNames.Name(scope)}-{subject}.token");
        lock (_lock)
            if (!File.Exists(path)) SecretFile.Write(path, Issuer().Issue(scope, subject, ServiceTokenLifetime));
        return path;
    }

    /// <summary>The token itself (clients such as storagectl send it).</summary>
    public string Token(Scope scope, string subject) => SecretFile.Read(TokenFile(scope, subject)).Trim();

    /// <summary>Signs new tokens (the control plane's tenant-bound compute tokens).</summary>
    public TokenIssuer Issuer() => new(SigningKey.ReadPrivate(PrivateKeyFile));

    /// <summary>The options of a service that checks tokens and calls others as <paramref name="subject"/> in <paramref name="scope"/>.</summary>
    public Processes.AuthOptions ServiceAuth(Scope scope, string subject) => new() { PublicKeyFile = PublicKeyFile, TokenFile = TokenFile(scope, subject) };

    /// <summary>The options of a service that only checks tokens (it calls no one).</summary>
    public Processes.AuthOptions VerifierAuth() => new() { PublicKeyFile = PublicKeyFile };

    /// <summary>The flags of <see cref="ServiceAuth"/>, for launchers that build arguments as text.</summary>
    public string[] ServiceArguments(Scope scope, string subject) => Hosting.ServiceOptions.ToArguments(ServiceAuth(scope, subject));

    /// <summary>
    /// The flags of the control plane (the compute proxy's process): its own token, and the private key
    /// it mints each attach's tenant-bound compute token with.
    /// </summary>
    public string[] ControlPlaneArguments() =>
        [.. ServiceArguments(Scope.ControlPlane, "control-plane"), "--auth-signing-key", PrivateKeyFile];

    /// <summary>The flags of <see cref="VerifierAuth"/>.</summary>
    public string[] VerifierArguments() => Hosting.ServiceOptions.ToArguments(VerifierAuth());
}
