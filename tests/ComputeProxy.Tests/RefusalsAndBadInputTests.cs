using System.Buffers.Binary;
using Npgsql;
using Storage.ComputeProxy.Proxy;

namespace Storage.ComputeProxy.Tests;

/// <summary>What the proxy answers to connections it cannot serve, and that it keeps serving others.</summary>
public sealed class RefusalsAndBadInputTests(ScramPostgresFixture pg) : IClassFixture<ScramPostgresFixture>
{
    private ProxyHarness NewProxy(ProxyOptions? options = null)
    {
        var proxy = new ProxyHarness(options);
        proxy.Locator.Set("ep1", pg.Address);
        return proxy;
    }

    private static async Task AssertStillServesAsync(ProxyHarness proxy)
    {
        await using var connection = new NpgsqlConnection(proxy.ConnectionString("endpoint=ep1"));
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT 7", connection);
        Assert.Equal(7, await command.ExecuteScalarAsync());
    }

    private static async Task<PostgresException> OpenFailsAsync(string connectionString)
    {
        return await Assert.ThrowsAsync<PostgresException>(async () =>
        {
            await using var connection = new NpgsqlConnection(connectionString);
            await connection.OpenAsync();
        });
    }

    [Fact]
    public async Task An_unknown_endpoint_gets_3D000_naming_it()
    {
        await using var proxy = NewProxy();
        var e = await OpenFailsAsync(proxy.ConnectionString("endpoint=nope"));
        Assert.Equal(SqlStates.UnknownEndpoint, e.SqlState);
        Assert.Equal("FATAL", e.Severity);
        Assert.Contains("endpoint \"nope\" does not exist", e.MessageText);
        Assert.Equal(1, proxy.Metric("proxy_connections_failed_total{reason=\"unknown_endpoint\"}"));
        await AssertStillServesAsync(proxy);
    }

    [Fact]
    public async Task No_endpoint_and_no_default_gets_08004_with_a_hint()
    {
        await using var proxy = NewProxy();
        var e = await OpenFailsAsync(proxy.ConnectionString());
        Assert.Equal(SqlStates.RejectedEstablishment, e.SqlState);
        Assert.Contains("endpoint=", e.Hint);
    }

    [Fact]
    public async Task A_compute_that_does_not_start_in_time_gets_08001()
    {
        await using var proxy = NewProxy(new ProxyOptions { LocateTimeout = TimeSpan.FromSeconds(1) });
        proxy.Locator.BeforeAnswer = (_, ct) => Task.Delay(Timeout.Infinite, ct);
        var e = await OpenFailsAsync(proxy.ConnectionString("endpoint=ep1"));
        Assert.Equal(SqlStates.UnableToConnect, e.SqlState);
        Assert.Contains("did not start within 1 s", e.MessageText);
    }

    [Fact]
    public async Task A_compute_that_stays_unreachable_gets_08001_after_bounded_retries()
    {
        await using var proxy = NewProxy(new ProxyOptions { ConnectRetries = 2, RetryBaseDelay = TimeSpan.FromMilliseconds(10) });
        proxy.Locator.Set("ep1", new ComputeAddress("127.0.0.1", Core.Processes.ServiceProcess.FreePort(), "vm-gone"));
        var e = await OpenFailsAsync(proxy.ConnectionString("endpoint=ep1"));
        Assert.Equal(SqlStates.UnableToConnect, e.SqlState);
        Assert.Contains("after 3 attempts", e.MessageText);
        Assert.Equal(3, proxy.Locator.Invalidated.Count);
    }

    [Fact]
    public async Task Garbage_bytes_get_08P01_and_the_proxy_serves_others()
    {
        await using var proxy = NewProxy();
        await using (var client = await WireClient.ConnectAsync(proxy.Port))
        {
            await client.SendAsync(WireClient.Ascii("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
            var fields = await client.ReadFatalErrorAsync();
            Assert.Equal(SqlStates.ProtocolViolation, fields['C']);
            Assert.Contains("invalid length of startup packet", fields['M']);
        }
        await AssertStillServesAsync(proxy);
    }

    [Theory]
    [InlineData(int.MaxValue)]
    [InlineData(-5)]
    [InlineData(4)]
    [InlineData(StartupPacket.MaxLength + 1)]
    public async Task A_bad_length_word_is_refused_at_once(int length)
    {
        await using var proxy = NewProxy();
        await using var client = await WireClient.ConnectAsync(proxy.Port);
        var bytes = new byte[8];
        BinaryPrimitives.WriteInt32BigEndian(bytes, length);
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4), 3 << 16);
        await client.SendAsync(bytes);
        Assert.Equal(SqlStates.ProtocolViolation, (await client.ReadFatalErrorAsync())['C']);
    }

    [Fact]
    public async Task A_truncated_startup_packet_then_close_is_dropped_and_the_proxy_serves_others()
    {
        await using var proxy = NewProxy();
        await using (var client = await WireClient.ConnectAsync(proxy.Port))
        {
            await client.SendAsync(WireClient.StartupMessage(("user", "app"), ("options", "endpoint=ep1"))[..12]);
            client.ShutdownSend();
            Assert.True(await client.ClosedWithoutAnswerAsync());
        }
        await ChecksEventually(() => proxy.Metric("proxy_connections_failed_total{reason=\"closed\"}") == 1);
        await AssertStillServesAsync(proxy);
    }

    [Fact]
    public async Task A_truncated_startup_packet_left_hanging_times_out_with_08P01()
    {
        await using var proxy = NewProxy(new ProxyOptions { StartupTimeout = TimeSpan.FromSeconds(1) });
        await using var client = await WireClient.ConnectAsync(proxy.Port);
        await client.SendAsync(WireClient.StartupMessage(("user", "app"))[..10]);
        var fields = await client.ReadFatalErrorAsync();
        Assert.Equal(SqlStates.ProtocolViolation, fields['C']);
        Assert.Contains("no complete startup packet", fields['M']);
    }

    [Theory]
    [InlineData(new byte[] { 0, 0, 0, 12, 0, 3, 0, 0, (byte)'u', 0, 0, 0 }, "no PostgreSQL user name")]
    [InlineData(new byte[] { 0, 0, 0, 14, 0, 3, 0, 0, (byte)'u', 0, (byte)'x', 0, 0, 7 }, "data after the terminator")]
    [InlineData(new byte[] { 0, 0, 0, 12, 0, 3, 0, 0, (byte)'u', (byte)'s', (byte)'e', (byte)'r' }, "expected terminator")]
    [InlineData(new byte[] { 0, 0, 0, 9, 0, 2, 0, 0, 0 }, "unsupported frontend protocol 2.0")]
    [InlineData(new byte[] { 0, 0, 0, 12, 4, 210, 22, 47, 0, 0, 0, 0 }, "invalid length")]
    public async Task Malformed_startup_packets_get_08P01_with_the_reason(byte[] packet, string reason)
    {
        await using var proxy = NewProxy();
        await using var client = await WireClient.ConnectAsync(proxy.Port);
        await client.SendAsync(packet);
        var fields = await client.ReadFatalErrorAsync();
        Assert.Equal(SqlStates.ProtocolViolation, fields['C']);
        Assert.Contains(reason, fields['M']);
    }

    [Fact]
    public async Task SSL_and_GSSENC_requests_get_N_without_a_certificate_then_the_session_starts()
    {
        await using var proxy = NewProxy();
        await using var client = await WireClient.ConnectAsync(proxy.Port);
        await client.SendAsync(WireClient.Int32Packet(StartupPacket.GssEncRequestCode));
        Assert.Equal('N', await client.ReadByteAsync());
        await client.SendAsync(WireClient.Int32Packet(StartupPacket.SslRequestCode));
        Assert.Equal('N', await client.ReadByteAsync());
        await client.SendAsync(WireClient.StartupMessage(("user", "app"), ("database", "app"), ("options", "endpoint=ep1")));
        var auth = await client.ReadMessageAsync();
        Assert.Equal('R', auth?.Type); // PostgreSQL's SCRAM challenge, relayed
        Assert.Equal(10, BinaryPrimitives.ReadInt32BigEndian(auth!.Value.Body)); // AuthenticationSASL
    }

    [Fact]
    public async Task A_second_SSL_request_is_a_protocol_violation()
    {
        await using var proxy = NewProxy();
        await using var client = await WireClient.ConnectAsync(proxy.Port);
        await client.SendAsync(WireClient.Int32Packet(StartupPacket.SslRequestCode));
        Assert.Equal('N', await client.ReadByteAsync());
        await client.SendAsync(WireClient.Int32Packet(StartupPacket.SslRequestCode));
        Assert.Equal(SqlStates.ProtocolViolation, (await client.ReadFatalErrorAsync())['C']);
    }

    [Fact]
    public async Task A_CancelRequest_with_an_unknown_key_is_closed_silently()
    {
        await using var proxy = NewProxy();
        await using var client = await WireClient.ConnectAsync(proxy.Port);
        var cancel = new byte[16];
        BinaryPrimitives.WriteInt32BigEndian(cancel, 16);
        BinaryPrimitives.WriteInt32BigEndian(cancel.AsSpan(4), StartupPacket.CancelRequestCode);
        BinaryPrimitives.WriteInt32BigEndian(cancel.AsSpan(8), 12345);
        await client.SendAsync(cancel);
        Assert.True(await client.ClosedWithoutAnswerAsync());
        Assert.Equal(1, proxy.Metric("proxy_cancel_requests_total{result=\"unknown_key\"}"));
    }

    [Fact]
    public async Task Random_bytes_from_many_clients_never_stop_the_proxy()
    {
        await using var proxy = NewProxy(new ProxyOptions { StartupTimeout = TimeSpan.FromSeconds(2) });
        var random = new Random(42);
        await Parallel.ForEachAsync(Enumerable.Range(0, 40), async (i, _) =>
        {
            var bytes = new byte[random.Next(1, 64)];
            lock (random) random.NextBytes(bytes);
            await using var client = await WireClient.ConnectAsync(proxy.Port);
            try
            {
                await client.SendAsync(bytes);
                if (i % 2 == 0) client.ShutdownSend();
                await client.ClosedWithoutAnswerAsync(); // an error message or nothing, then the close
            }
            catch (IOException) { }
        });
        await AssertStillServesAsync(proxy);
        Assert.Equal(0, proxy.Metric("proxy_connections_failed_total{reason=\"internal\"}"));
    }

    private static Task ChecksEventually(Func<bool> condition) => ClientToolsThroughProxyTests.Eventually(condition);
}
