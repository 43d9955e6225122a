using System.Net.Security;
using System.Buffers.Binary;
using Npgsql;
using Storage.ComputeProxy.Proxy;

namespace Storage.ComputeProxy.Tests;

/// <summary>TLS from clients to the proxy, and routing by the SNI host name.</summary>
public sealed class TlsTests(ScramPostgresFixture pg) : IClassFixture<ScramPostgresFixture>, IDisposable
{
    private readonly TestCertificates _certificates = new();

    private ProxyHarness NewProxy(ProxyOptions options)
    {
        var proxy = new ProxyHarness(options);
        proxy.Locator.Set("ep1", pg.Address);
        proxy.Locator.Set("sni-ep", pg.Address);
        return proxy;
    }

    /// <summary>SSLRequest, 'S', a TLS handshake naming <paramref name="sniHost"/>, then a startup message.</summary>
    private static async Task<WireClient> ConnectTlsAsync(ProxyHarness proxy, string sniHost, params (string, string)[] extra)
    {
        var client = await WireClient.ConnectAsync(proxy.Port);
        await client.SendAsync(WireClient.Int32Packet(StartupPacket.SslRequestCode));
        Assert.Equal('S', await client.ReadByteAsync());
        var tls = new SslStream(client.Stream, leaveInnerStreamOpen: false, (_, _, _, _) => true);
        await tls.AuthenticateAsClientAsync(sniHost);
        client.Stream = tls;
        await client.SendAsync(WireClient.StartupMessage([("user", ScramPostgresFixture.User), ("database", ScramPostgresFixture.Database), .. extra]));
        return client;
    }

    private static async Task AssertScramChallengeAsync(WireClient client)
    {
        var auth = await client.ReadMessageAsync();
        Assert.Equal('R', auth?.Type);
        Assert.Equal(10, BinaryPrimitives.ReadInt32BigEndian(auth!.Value.Body)); // AuthenticationSASL from PostgreSQL
    }

    [Fact]
    public async Task Npgsql_with_SslMode_Require_gets_TLS_from_a_PFX_certificate_and_SCRAM_passes_through()
    {
        await using var proxy = NewProxy(new ProxyOptions { TlsCertificatePath = _certificates.PfxPath });
        var builder = new NpgsqlDataSourceBuilder(proxy.ConnectionString("endpoint=ep1"));
        builder.ConnectionStringBuilder.SslMode = SslMode.Require;
        builder.UseSslClientAuthenticationOptionsCallback(o => o.RemoteCertificateValidationCallback = (_, _, _, _) => true);
        await using var dataSource = builder.Build();
        await using var connection = await dataSource.OpenConnectionAsync();
        await using var command = new NpgsqlCommand("SELECT current_user", connection);
        Assert.Equal(ScramPostgresFixture.User, await command.ExecuteScalarAsync());
    }

    [Fact]
    public async Task The_first_label_of_the_SNI_name_picks_the_endpoint_with_a_PEM_certificate()
    {
        await using var proxy = NewProxy(new ProxyOptions
        {
            TlsCertificatePath = _certificates.PemCertificatePath, TlsKeyPath = _certificates.PemKeyPath, SniDomain = TestCertificates.Domain,
        });
        await using var client = await ConnectTlsAsync(proxy, "sni-ep." + TestCertificates.Domain);
        await AssertScramChallengeAsync(client);
        Assert.Equal(["sni-ep"], proxy.Locator.Located);
    }

    [Fact]
    public async Task The_endpoint_option_wins_over_SNI_and_names_outside_the_domain_are_ignored()
    {
        await using var proxy = NewProxy(new ProxyOptions
        {
            TlsCertificatePath = _certificates.PfxPath, SniDomain = TestCertificates.Domain, DefaultEndpoint = "ep1",
        });
        await using (var client = await ConnectTlsAsync(proxy, "sni-ep." + TestCertificates.Domain, ("options", "endpoint=ep1")))
            await AssertScramChallengeAsync(client);
        await using (var client = await ConnectTlsAsync(proxy, "sni-ep.elsewhere.example"))
            await AssertScramChallengeAsync(client);
        Assert.Equal(["ep1", "ep1"], proxy.Locator.Located);
    }

    [Fact]
    public async Task An_unknown_SNI_endpoint_gets_3D000_over_TLS()
    {
        await using var proxy = NewProxy(new ProxyOptions { TlsCertificatePath = _certificates.PfxPath });
        await using var client = await ConnectTlsAsync(proxy, "nope." + TestCertificates.Domain);
        var fields = await client.ReadFatalErrorAsync();
        Assert.Equal(SqlStates.UnknownEndpoint, fields['C']);
        Assert.Contains("\"nope\"", fields['M']);
    }

    [Fact]
    public async Task Plaintext_sent_right_after_an_SSLRequest_is_refused()
    {
        await using var proxy = NewProxy(new ProxyOptions { TlsCertificatePath = _certificates.PfxPath });
        await using var client = await WireClient.ConnectAsync(proxy.Port);
        await client.SendAsync([.. WireClient.Int32Packet(StartupPacket.SslRequestCode), .. WireClient.StartupMessage(("user", "app"))]);
        var fields = await client.ReadFatalErrorAsync();
        Assert.Equal(SqlStates.ProtocolViolation, fields['C']);
        Assert.Contains("unencrypted data after SSL request", fields['M']);
    }

    [Fact]
    public async Task A_failed_TLS_handshake_is_counted_and_the_proxy_serves_others()
    {
        await using var proxy = NewProxy(new ProxyOptions { TlsCertificatePath = _certificates.PfxPath });
        await using (var client = await WireClient.ConnectAsync(proxy.Port))
        {
            await client.SendAsync(WireClient.Int32Packet(StartupPacket.SslRequestCode));
            Assert.Equal('S', await client.ReadByteAsync());
            await client.SendAsync(WireClient.Ascii("this is not a TLS ClientHello at all........"));
            Assert.True(await client.ClosedWithoutAnswerAsync());
        }
        await ClientToolsThroughProxyTests.Eventually(() => proxy.Metric("proxy_connections_failed_total{reason=\"tls\"}") == 1);
        await using var ok = await ConnectTlsAsync(proxy, "ep1." + TestCertificates.Domain);
        await AssertScramChallengeAsync(ok);
    }

    public void Dispose() => _certificates.Dispose();
}
