using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Storage.ComputeProxy.Tests;

/// <summary>A self-signed server certificate for *.proxy.test written to a temp dir as PFX and as PEM.</summary>
public sealed class TestCertificates : IDisposable
{
    public const string Domain = "proxy.test";
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("proxy-cert-");
    public string PfxPath => Path.Combine(_dir.FullName, "server.pfx");
    public string PemCertificatePath => Path.Combine(_dir.FullName, "server.crt");
    public string PemKeyPath => Path.Combine(_dir.FullName, "server.key");

    public TestCertificates()
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest($"CN={Domain}", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName("*." + Domain);
        names.AddDnsName("localhost");
        request.CertificateExtensions.Add(names.Build());
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(7));
        File.WriteAllBytes(PfxPath, certificate.Export(X509ContentType.Pfx));
        File.WriteAllText(PemCertificatePath, certificate.ExportCertificatePem());
        File.WriteAllText(PemKeyPath, key.ExportPkcs8PrivateKeyPem());
    }

    public void Dispose() => _dir.Delete(recursive: true);
}
