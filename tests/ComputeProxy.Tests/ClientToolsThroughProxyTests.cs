using Storage.Core.Postgres.Wire;
using System.Diagnostics;
using System.Globalization;
using Npgsql;
using Storage.ComputeProxy.Proxy;
using Storage.Core.Postgres;

namespace Storage.ComputeProxy.Tests;

/// <summary>Real clients (psql, Npgsql, pgbench) through the proxy to a real PostgreSQL with SCRAM.</summary>
public sealed class ClientToolsThroughProxyTests(ScramPostgresFixture pg) : IClassFixture<ScramPostgresFixture>
{
    private ProxyHarness NewProxy(Proxy.ProxyOptions? options = null)
    {
        var proxy = new ProxyHarness(options);
        proxy.Locator.Set("ep1", pg.Address);
        return proxy;
    }

    private async Task<ProcessResult> RunToolAsync(string tool, int port, string? pgOptions, params string[] args)
    {
        var psi = new ProcessStartInfo(pg.Postgres.Binaries.Tool(tool));
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["PGHOST"] = "127.0.0.1";
        psi.Environment["PGPORT"] = port.ToString(CultureInfo.InvariantCulture);
        psi.Environment["PGUSER"] = ScramPostgresFixture.User;
        psi.Environment["PGDATABASE"] = ScramPostgresFixture.Database;
        psi.Environment["PGPASSWORD"] = ScramPostgresFixture.Password;
        psi.Environment["PGSSLMODE"] = "disable";
        if (pgOptions != null) psi.Environment["PGOPTIONS"] = pgOptions;
        return await ProcessRunner.RunAsync(psi, TimeSpan.FromMinutes(2));
    }

    [Fact]
    public async Task Psql_runs_queries_through_the_proxy_with_the_endpoint_in_options()
    {
        await using var proxy = NewProxy();
        var result = (await RunToolAsync("psql", proxy.Port, "endpoint=ep1 -c work_mem=7MB",
            "-X", "-At", "-c", "SELECT current_user || ' ' || current_setting('work_mem') || ' ' || 6*7")).ThrowIfFailed("psql");
        Assert.Equal($"{ScramPostgresFixture.User} 7MB 42", result.StandardOutput.Trim());
        Assert.Equal(["ep1"], proxy.Locator.Located);
        Assert.Equal(1, proxy.Metric("proxy_sessions_total"));
        Assert.True(proxy.Metric("proxy_bytes_relayed_total{direction=\"compute_to_client\"}") > 0);
    }

    [Theory]
    [InlineData("endpoint=ep1")]
    [InlineData("-c endpoint=ep1")]
    [InlineData("-cendpoint=ep1")]
    [InlineData("--endpoint=ep1")]
    public async Task Npgsql_connects_with_each_form_of_the_endpoint_option_and_other_options_are_kept(string endpointOption)
    {
        await using var proxy = NewProxy();
        await using var connection = new NpgsqlConnection(proxy.ConnectionString($"-c search_path=custom {endpointOption} -c work_mem=8MB"));
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT current_setting('search_path') || ' ' || current_setting('work_mem')", connection);
        Assert.Equal("custom 8MB", await command.ExecuteScalarAsync());
    }

    [Fact]
    public async Task The_default_endpoint_serves_connections_that_name_none()
    {
        await using var proxy = NewProxy(new Proxy.ProxyOptions { DefaultEndpoint = "ep1" });
        await using var connection = new NpgsqlConnection(proxy.ConnectionString());
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT 1", connection);
        Assert.Equal(1, await command.ExecuteScalarAsync());
        Assert.Equal(["ep1"], proxy.Locator.Located);
    }

    [Fact]
    public async Task Scram_authentication_passes_through_and_a_wrong_password_gets_postgres_own_error()
    {
        await using var proxy = NewProxy();
        var wrong = await Assert.ThrowsAsync<PostgresException>(async () =>
        {
            await using var connection = new NpgsqlConnection(proxy.ConnectionString("endpoint=ep1", password: "wrong"));
            await connection.OpenAsync();
        });
        Assert.True(wrong.SqlState == "28P01", wrong.Message);

        await using var ok = new NpgsqlConnection(proxy.ConnectionString("endpoint=ep1"));
        await ok.OpenAsync();
        // The compute sees a TCP client (the proxy), which pg_hba.conf sends through SCRAM.
        await using var command = new NpgsqlCommand("SELECT current_user FROM pg_stat_activity WHERE pid = pg_backend_pid() AND client_addr IS NOT NULL", ok);
        Assert.Equal(ScramPostgresFixture.User, await command.ExecuteScalarAsync());
        // The refused session has ended; this one is the only one relayed now.
        await Eventually(() => proxy.Metric("proxy_sessions_active") == 1);
    }

    [Fact]
    public async Task A_CancelRequest_through_the_proxy_cancels_a_running_pg_sleep()
    {
        await using var proxy = NewProxy();
        await using var connection = new NpgsqlConnection(proxy.ConnectionString("endpoint=ep1"));
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT pg_sleep(30)", connection);
        var running = command.ExecuteNonQueryAsync();
        // PostgreSQL ignores a cancel that arrives while the backend still reads the command: wait until it sleeps.
        await using (var watcher = new NpgsqlConnection(proxy.ConnectionString("endpoint=ep1")))
        {
            await watcher.OpenAsync();
            await using var sleeping = new NpgsqlCommand("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query = 'SELECT pg_sleep(30)'", watcher);
            for (var deadline = DateTime.UtcNow.AddSeconds(25); (long)(await sleeping.ExecuteScalarAsync())! == 0; await Task.Delay(50))
                Assert.True(DateTime.UtcNow < deadline, "pg_sleep never showed as running");
        }
        command.Cancel();
        // Npgsql 10 reports the server's 57014 (query_canceled: the sleep did not run out) inside an OperationCanceledException.
        var cancelled = await Assert.ThrowsAsync<OperationCanceledException>(() => running);
        Assert.Equal("57014", Assert.IsType<PostgresException>(cancelled.InnerException).SqlState);
        Assert.Equal(1, proxy.Metric("proxy_cancel_requests_total{result=\"forwarded\"}"));
        await using var after = new NpgsqlCommand("SELECT 1", connection);
        Assert.Equal(1, await after.ExecuteScalarAsync());
    }

    [Fact]
    public async Task Cancel_keys_are_forgotten_when_the_session_ends()
    {
        await using var proxy = NewProxy();
        await using (var connection = new NpgsqlConnection(proxy.ConnectionString("endpoint=ep1")))
        {
            await connection.OpenAsync();
            Assert.Equal(1, proxy.Server.CancelKeys.Count);
        }
        await Eventually(() => proxy.Server.CancelKeys.Count == 0 && proxy.Locator.SessionsEnded == 1);
        Assert.Equal(0, proxy.Metric("proxy_sessions_active"));
    }

    [Fact]
    public async Task Pgbench_initializes_then_runs_tpcb_and_select_only_through_the_proxy()
    {
        await using var proxy = NewProxy();
        (await RunToolAsync("pgbench", proxy.Port, "endpoint=ep1", "-i", "-s", "1", "-q")).ThrowIfFailed("pgbench -i");
        var tpcb = (await RunToolAsync("pgbench", proxy.Port, "endpoint=ep1", "-c", "4", "-T", "3", "-n")).ThrowIfFailed("pgbench -c4 -T3");
        Assert.Contains("number of failed transactions: 0", tpcb.StandardOutput);
        var select = (await RunToolAsync("pgbench", proxy.Port, "endpoint=ep1", "-S", "-c", "4", "-T", "3", "-n")).ThrowIfFailed("pgbench -S");
        Assert.Contains("number of failed transactions: 0", select.StandardOutput);
        Assert.Equal(0, proxy.Metric("proxy_connections_failed_total{reason=\"internal\"}"));
    }

    [Fact]
    public async Task A_compute_whose_first_address_refuses_is_invalidated_and_the_client_gets_through()
    {
        await using var proxy = NewProxy();
        var dead = new ComputeAddress("127.0.0.1", Core.Processes.ServiceProcess.FreePort(), "vm-dead");
        proxy.Locator.Set("ep1", dead, pg.Address);
        await using var connection = new NpgsqlConnection(proxy.ConnectionString("endpoint=ep1"));
        await connection.OpenAsync();
        Assert.Equal([("ep1", dead)], proxy.Locator.Invalidated);
        Assert.Equal(1, proxy.Metric("proxy_connect_retries_total"));
    }

    [Fact]
    public async Task A_compute_that_accepts_and_closes_at_once_is_retried_elsewhere()
    {
        using var dying = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        dying.Start();
        var closer = Task.Run(async () =>
        {
            for (int i = 0; i < 3; i++) (await dying.AcceptTcpClientAsync()).Dispose();
        });
        await using var proxy = NewProxy();
        var closing = new ComputeAddress("127.0.0.1", ((System.Net.IPEndPoint)dying.LocalEndpoint).Port, "vm-dying");
        proxy.Locator.Set("ep1", closing, pg.Address);
        await using var connection = new NpgsqlConnection(proxy.ConnectionString("endpoint=ep1"));
        await connection.OpenAsync();
        Assert.Single(proxy.Locator.Invalidated);
    }

    [Fact]
    public async Task A_compute_whose_postgres_is_starting_up_is_retried_and_the_client_sees_no_error()
    {
        // PostgreSQL answers 57P03 while the agent restarts it; the proxy tries again instead of relaying that.
        using var starting = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        starting.Start();
        var answered = Task.Run(async () =>
        {
            using var client = await starting.AcceptTcpClientAsync();
            var stream = client.GetStream();
            await stream.ReadAtLeastAsync(new byte[1024], 1, throwOnEndOfStream: false); // the startup packet
            var error = ErrorResponse.Build("FATAL", "57P03", "the database system is starting up");
            await stream.WriteAsync(error.AsMemory(0, 3)); // split: the proxy must wait for the whole message
            await Task.Delay(50);
            await stream.WriteAsync(error.AsMemory(3));
        });
        await using var proxy = NewProxy();
        var startingUp = new ComputeAddress("127.0.0.1", ((System.Net.IPEndPoint)starting.LocalEndpoint).Port, "vm-restarting");
        proxy.Locator.Set("ep1", startingUp, pg.Address);
        await using var connection = new NpgsqlConnection(proxy.ConnectionString("endpoint=ep1"));
        await connection.OpenAsync();
        await answered;
        Assert.Equal((("ep1", startingUp)), Assert.Single(proxy.Locator.Invalidated));
        await using var command = new NpgsqlCommand("select 1", connection);
        Assert.Equal(1, await command.ExecuteScalarAsync());
    }

    [Fact]
    public async Task A_client_is_held_while_the_compute_wakes()
    {
        await using var proxy = NewProxy();
        proxy.Locator.BeforeAnswer = (_, ct) => Task.Delay(1500, ct);
        var started = Stopwatch.StartNew();
        await using var connection = new NpgsqlConnection(proxy.ConnectionString("endpoint=ep1"));
        await connection.OpenAsync();
        Assert.True(started.Elapsed >= TimeSpan.FromSeconds(1.4));
    }

    [Fact]
    public async Task Stopping_the_proxy_ends_its_sessions_and_a_new_proxy_on_the_same_port_serves_the_same_connection_string()
    {
        var first = NewProxy();
        int port = first.Port;
        string connectionString = first.ConnectionString("endpoint=ep1");
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await first.DisposeAsync();
        await using var broken = new NpgsqlCommand("SELECT 1", connection);
        await Assert.ThrowsAnyAsync<NpgsqlException>(() => broken.ExecuteScalarAsync());
        Assert.Equal(1, first.Locator.SessionsEnded);

        await using var second = new ProxyHarness(port: port);
        second.Locator.Set("ep1", pg.Address);
        await using var again = new NpgsqlConnection(connectionString);
        await again.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT 2", again);
        Assert.Equal(2, await command.ExecuteScalarAsync());
    }

    internal static async Task Eventually(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not met within 10 s");
            await Task.Delay(50);
        }
    }
}
