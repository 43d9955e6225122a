using System.Net;
using System.Security.Cryptography.X509Certificates;

namespace Storage.ComputeProxy.Proxy;

/// <summary>Settings of a <see cref="ProxyServer"/>.</summary>
public sealed record ProxyOptions
{
    /// <summary>Where clients connect (port 0 picks a free port; see <see cref="ProxyServer.LocalEndPoint"/>).</summary>
    public IPEndPoint Listen { get; init; } = new(IPAddress.Loopback, 55432);

    /// <summary>The endpoint of a connection that names none (no options, no SNI); null refuses such connections.</summary>
    public string? DefaultEndpoint { get; init; }

    /// <summary>TLS certificate: a .pfx/.p12 file, or a PEM certificate (key in the same file or <see cref="TlsKeyPath"/>). Null: no TLS.</summary>
    public string? TlsCertificatePath { get; init; }
    public string? TlsKeyPath { get; init; }
    public string? TlsCertificatePassword { get; init; }
    /// <summary>A certificate object instead of a file (tests, or a host that loads it itself).</summary>
    public X509Certificate2? TlsCertificate { get; init; }

    /// <summary>Only SNI names under this domain route by their first label (e.g. "proxy.local"); null: any name of two labels or more.</summary>
    public string? SniDomain { get; init; }

    /// <summary>How long a client may take from connect to a complete startup packet (and TLS handshake).</summary>
    public TimeSpan StartupTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How long the client is held while the locator finds or wakes the compute.</summary>
    public TimeSpan LocateTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>One TCP connect to a compute, and its first answer to the startup packet.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Connect retries after a failure (each after Invalidate and a growing back-off).</summary>
    public int ConnectRetries { get; init; } = 8;
    public TimeSpan RetryBaseDelay { get; init; } = TimeSpan.FromMilliseconds(100);
    public TimeSpan RetryMaxDelay { get; init; } = TimeSpan.FromSeconds(2);

    public X509Certificate2? LoadCertificate()
    {
        if (TlsCertificate != null) return TlsCertificate;
        if (TlsCertificatePath == null) return null;
        var extension = Path.GetExtension(TlsCertificatePath).ToLowerInvariant();
        return extension is ".pfx" or ".p12"
            ? X509CertificateLoader.LoadPkcs12FromFile(TlsCertificatePath, TlsCertificatePassword)
            : X509Certificate2.CreateFromPemFile(TlsCertificatePath, TlsKeyPath);
    }
}
