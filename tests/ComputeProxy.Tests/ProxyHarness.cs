using System.Net;
using Npgsql;
using Storage.ComputeProxy.Proxy;

namespace Storage.ComputeProxy.Tests;

/// <summary>A <see cref="ProxyServer"/> on a free loopback port, in-process, with a <see cref="TestLocator"/>.</summary>
public sealed class ProxyHarness : IAsyncDisposable
{
    public TestLocator Locator { get; } = new();
    public ProxyMetrics Metrics { get; } = new();
    public ProxyServer Server { get; }
    public int Port => Server.LocalEndPoint.Port;

    /// <param name="port">0 for a free port.</param>
    public ProxyHarness(ProxyOptions? options = null, int port = 0)
    {
        options ??= new ProxyOptions();
        Server = new ProxyServer(options with { Listen = new IPEndPoint(IPAddress.Loopback, port) }, Locator, Metrics);
        Server.Start();
    }

    /// <summary>An Npgsql connection string to the proxy as the SCRAM role; <paramref name="options"/> goes into the startup options.</summary>
    public string ConnectionString(string? options = null, string user = ScramPostgresFixture.User, string password = ScramPostgresFixture.Password)
    {
        var builder = new NpgsqlConnectionStringBuilder
        {
            Host = "127.0.0.1", Port = Port, Username = user, Password = password, Database = ScramPostgresFixture.Database,
            Pooling = false, Timeout = 30, CommandTimeout = 60, SslMode = SslMode.Disable,
            // Npgsql retries a refused GSS-encryption attempt without it; one attempt keeps the counts exact.
            GssEncryptionMode = GssEncryptionMode.Disable,
        };
        if (options != null) builder.Options = options;
        return builder.ConnectionString;
    }

    public double Metric(string line)
    {
        using var text = new MemoryStream();
        Metrics.Registry.CollectAndExportAsTextAsync(text).GetAwaiter().GetResult();
        return Storage.Testing.Scrape.Value(System.Text.Encoding.UTF8.GetString(text.ToArray()), line) ?? 0;
    }

    public async ValueTask DisposeAsync() => await Server.DisposeAsync();
}
