using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Storage.Core.Postgres.Scram;

/// <summary>
/// A SCRAM-SHA-256 verifier as PostgreSQL stores it (pg_authid.rolpassword):
/// <c>SCRAM-SHA-256$iterations:salt$StoredKey:ServerKey</c>. It proves a password without holding
/// it: whoever keeps it can check a client's proof and recover that session's ClientKey, never the
/// password itself.
/// </summary>
public sealed record ScramVerifier(int Iterations, byte[] Salt, byte[] StoredKey, byte[] ServerKey)
{
    public const string Mechanism = "SCRAM-SHA-256";
    public const int DefaultIterations = 4096;

    /// <summary>A verifier of <paramref name="password"/> with a fresh random salt (what PostgreSQL's password_encryption does).</summary>
    public static ScramVerifier FromPassword(string password, int iterations = DefaultIterations) =>
        FromPassword(password, RandomNumberGenerator.GetBytes(16), iterations);

    public static ScramVerifier FromPassword(string password, byte[] salt, int iterations)
    {
        var clientKey = ClientKeyOf(password, salt, iterations);
        var salted = SaltedPassword(password, salt, iterations);
        return new ScramVerifier(iterations, salt, SHA256.HashData(clientKey), HMACSHA256.HashData(salted, "Server Key"u8));
    }

    /// <summary>The ClientKey a password gives (what a client computes; the proxy recovers it from a proof instead).</summary>
    public static byte[] ClientKeyOf(string password, byte[] salt, int iterations) =>
        HMACSHA256.HashData(SaltedPassword(password, salt, iterations), "Client Key"u8);

    // PostgreSQL runs SASLprep on the password; NFKC is what it amounts to for passwords without
    // prohibited characters (ours are hex).
    private static byte[] SaltedPassword(string password, byte[] salt, int iterations) =>
        Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(password.Normalize(NormalizationForm.FormKC)), salt, iterations, HashAlgorithmName.SHA256, 32);

    public override string ToString() =>
        $"{Mechanism}${Iterations.ToString(CultureInfo.InvariantCulture)}:{Convert.ToBase64String(Salt)}${Convert.ToBase64String(StoredKey)}:{Convert.ToBase64String(ServerKey)}";

    public static ScramVerifier Parse(string text)
    {
        var parts = text.Split('$');
        if (parts.Length != 3 || parts[0] != Mechanism) throw new FormatException("not a SCRAM-SHA-256 verifier");
        var head = parts[1].Split(':');
        var keys = parts[2].Split(':');
        if (head.Length != 2 || keys.Length != 2) throw new FormatException("a SCRAM-SHA-256 verifier is iterations:salt$StoredKey:ServerKey");
        return new ScramVerifier(int.Parse(head[0], CultureInfo.InvariantCulture), Convert.FromBase64String(head[1]),
            Convert.FromBase64String(keys[0]), Convert.FromBase64String(keys[1]));
    }
}
