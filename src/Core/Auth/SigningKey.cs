using System.Security.Cryptography;

namespace Storage.Core.Auth;

/// <summary>
/// The cluster's token signing key: an ECDSA P-256 key pair (ES256 tokens). The private half (only
/// storagectl and the control plane, which mint tokens, hold it) lives in a 0600 PEM file; services
/// that only check tokens get the public half.
/// </summary>
public static class SigningKey
{
    public static ECDsa Generate() => ECDsa.Create(ECCurve.NamedCurves.nistP256);

    public static void WritePrivate(ECDsa key, string path) => SecretFile.Write(path, key.ExportPkcs8PrivateKeyPem());

    public static void WritePublic(ECDsa key, string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        File.WriteAllText(path, key.ExportSubjectPublicKeyInfoPem());
    }

    public static ECDsa ReadPrivate(string path)
    {
        var key = ECDsa.Create();
        key.ImportFromPem(SecretFile.Read(path));
        return key;
    }

    public static ECDsa ReadPublic(string path)
    {
        var key = ECDsa.Create();
        key.ImportFromPem(File.ReadAllText(path));
        return key;
    }
}
