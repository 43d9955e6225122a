using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;
using Storage.ComputeProxy;
using Storage.ComputeProxy.ControlPlane;
using Storage.Core.Hosting;
using Storage.Testing;
using ControlPlaneHost = Storage.ComputeProxy.ControlPlane.ControlPlane;

namespace Storage.ControlPlane.Tests;

/// <summary>Three safekeepers and a pageserver with one timeline, shared by the tests of a class (each brings its own VMs).</summary>
public sealed class ClusterFixture : IAsyncLifetime
{
    public ComputeCluster Cluster { get; private set; } = null!;

    public async Task InitializeAsync() => Cluster = await ComputeCluster.StartAsync(vms: 0);

    public async Task DisposeAsync()
    {
        if (Cluster is not null) await Cluster.DisposeAsync();
    }
}

/// <summary>
/// A control plane hosted in the test process, with its own data directory and VM pool, stopped
/// (every VM killed) on dispose; with the admin API, hosted as the proxy process hosts it.
/// </summary>
public sealed class Harness : IAsyncDisposable
{
    private readonly ILoggerFactory _loggers;
    private readonly bool _admin;
    private WebApplication? _app;

    private Harness(ComputeCluster cluster, string dataDirectory, ITestOutputHelper output, ControlPlaneOptions options, bool admin)
    {
        Cluster = cluster;
        DataDirectory = dataDirectory;
        Options = options;
        _admin = admin;
        _loggers = LoggerFactory.Create(b => b.AddProvider(new TestOutputLoggerProvider(output)));
        ControlPlane = new ControlPlaneHost(options, _loggers);
    }

    /// <summary>The admin API's address (with <c>admin: true</c>).</summary>
    public Uri AdminUri => new($"http://{_app?.Services.GetRequiredService<BoundEndpoints>().Http ?? throw new InvalidOperationException("started without the admin API")}");

    /// <summary>Starts the control plane, in a host serving its admin API if asked for.</summary>
    private async Task StartControlPlaneAsync()
    {
        if (!_admin)
        {
            await ControlPlane.StartAsync();
            return;
        }
        var builder = ServiceHost.CreateHttpBuilder(new IPEndPoint(IPAddress.Loopback, 0), "text");
        builder.Services.AddSingleton<IHostedService>(ControlPlane);
        _app = builder.Build();
        AdminApi.Map(_app, ControlPlane, TestAuth.Secrets.VerifierAuth().Validator());
        await _app.StartAsync();
    }

    /// <summary>Stops the host of the admin API, if any (the control plane stops with it unless abandoned).</summary>
    private async Task StopHostAsync()
    {
        if (_app is null) return;
        await _app.StopAsync();
        await _app.DisposeAsync();
        _app = null;
    }

    public ComputeCluster Cluster { get; }
    public string DataDirectory { get; }
    public ControlPlaneOptions Options { get; }
    public ControlPlaneHost ControlPlane { get; private set; }
    public IComputeLocator Locator => ControlPlane.Locator;

    /// <param name="externalVms">Agents the pool uses instead of starting its own (VM containers).</param>
    public static async Task<Harness> StartAsync(ComputeCluster cluster, ITestOutputHelper output, bool admin = false, string? dataDirectory = null,
        IReadOnlyList<Uri>? externalVms = null)
    {
        if (dataDirectory is null)
        {
            dataDirectory = Directory.CreateTempSubdirectory("control-plane-").FullName;
            // PostgreSQL runs as the postgres user and keeps its data directory in the VM's work directory.
            if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(dataDirectory, (UnixFileMode)0b111_101_101);
        }
        var options = new ControlPlaneOptions
        {
            DataDirectory = dataDirectory,
            Safekeepers = cluster.Safekeepers.Uris,
            Pageservers = [cluster.Pageserver.Uri],
            ComputeTokens = TestAuth.ComputeTokens,
            PublicKeyFile = TestAuth.Secrets.PublicKeyFile,
            PoolSize = 2,
            HeartbeatInterval = TimeSpan.FromMilliseconds(300),
            HeartbeatMisses = 3,
            WakeTimeout = TimeSpan.FromSeconds(90),
            ExternalVms = externalVms ?? [],
        };
        var harness = new Harness(cluster, dataDirectory, output, options, admin);
        try { await harness.StartControlPlaneAsync(); }
        catch
        {
            await harness.DisposeAsync();
            throw;
        }
        return harness;
    }

    /// <summary>Simulates a crash and restart of the control plane: the old one leaves its VMs running, a new one starts on the same data directory.</summary>
    public async Task RestartAsync()
    {
        await ControlPlane.AbandonAsync();
        await StopHostAsync();
        await ControlPlane.DisposeAsync(); // releases what is left; the VMs keep running
        ControlPlane = new ControlPlaneHost(Options, _loggers);
        await StartControlPlaneAsync();
    }

    public EndpointRecord CreateEndpoint(string id, TimeSpan? suspendTimeout = null) =>
        ControlPlane.Endpoints.Create(new EndpointSpec(id, Cluster.TenantId, Cluster.TimelineId, "app", "pw-" + id,
            new Dictionary<string, string> { ["shared_buffers"] = "32MB" }, suspendTimeout));

    public string ConnectionString(ComputeAddress address, string endpointId) =>
        $"Host={address.Host};Port={address.Port};Username=app;Password=pw-{endpointId};Database=postgres;Pooling=false;Timeout=5;Command Timeout=30";

    /// <summary>Connects the way the proxy will: locate (waking it), and on a failed connect invalidate and try again.</summary>
    public async Task<NpgsqlConnection> ConnectAsync(string endpointId, CancellationToken ct)
    {
        while (true)
        {
            var address = await Locator.LocateAsync(endpointId, ct);
            var connection = new NpgsqlConnection(ConnectionString(address, endpointId));
            try
            {
                await connection.OpenAsync(ct);
                return connection;
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException && !ct.IsCancellationRequested)
            {
                await connection.DisposeAsync();
                Locator.Invalidate(endpointId, address);
                await Task.Delay(100, ct);
            }
        }
    }

    public async Task<long> ScalarAsync(string endpointId, string sql, CancellationToken ct = default)
    {
        await using var connection = await ConnectAsync(endpointId, ct);
        await using var command = new NpgsqlCommand(sql, connection);
        return Convert.ToInt64(await command.ExecuteScalarAsync(ct));
    }

    public async Task ExecAsync(string endpointId, string sql, CancellationToken ct = default)
    {
        await using var connection = await ConnectAsync(endpointId, ct);
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync(ct);
    }

    /// <summary>Waits (bounded) until <paramref name="condition"/> holds.</summary>
    public static async Task WaitUntilAsync(Func<bool> condition, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"not within {timeout.TotalSeconds:0} s: {what}");
            await Task.Delay(50);
        }
    }

    /// <summary>The VM logs, for a failure message.</summary>
    public string Logs()
    {
        var vms = Path.Combine(DataDirectory, "vms");
        if (!Directory.Exists(vms)) return "";
        return string.Join("\n", Directory.GetFiles(vms, "*.log").Order().Select(f => $"--- {Path.GetFileName(f)}\n" + string.Join("\n", File.ReadLines(f).TakeLast(30))));
    }

    public async ValueTask DisposeAsync()
    {
        await StopHostAsync();
        await ControlPlane.DisposeAsync();
        _loggers.Dispose();
        try { Directory.Delete(DataDirectory, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
