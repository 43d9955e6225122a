using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Storage.ComputeProxy.Proxy;

/// <summary>
/// The Postgres wire-protocol proxy: accepts client connections and hands each to a
/// <see cref="ClientConnection"/>. Holds no per-connection state beyond the live sockets and the
/// cancel keys, so a restarted proxy serves the same clients after they reconnect. Hosted, it
/// starts listening with the host and, when the host stops, ends its sessions.
/// </summary>
public sealed class ProxyServer : IHostedService, IAsyncDisposable
{
    private readonly ProxyOptions _options;
    private readonly IComputeLocator _locator;
    private readonly ProxyMetrics _metrics;
    private readonly ILogger _logger;
    private readonly X509Certificate2? _certificate;
    private readonly EndpointRouter _router;
    private readonly ComputeConnector _connector;
    private readonly CancellationTokenSource _stopping = new();
    private readonly ConcurrentDictionary<long, Task> _connections = new();
    private Socket? _listener;
    private Task? _acceptLoop;
    private long _nextId;

    public ProxyServer(ProxyOptions options, IComputeLocator locator, ProxyMetrics metrics, ILoggerFactory? loggerFactory = null)
    {
        _options = options;
        _locator = locator;
        _metrics = metrics;
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("Storage.ComputeProxy.Proxy");
        _certificate = options.LoadCertificate();
        _router = new EndpointRouter(options.DefaultEndpoint, options.SniDomain);
        _connector = new ComputeConnector(locator, options, _metrics, _logger);
    }

    /// <summary>The bound address (the real port when <see cref="ProxyOptions.Listen"/> asked for port 0).</summary>
    public IPEndPoint LocalEndPoint => (IPEndPoint)(_listener?.LocalEndPoint ?? throw new InvalidOperationException("the proxy is not started"));

    public CancelKeyRegistry CancelKeys { get; } = new();

    /// <summary>Binds the listen address and starts accepting; returns once clients can connect.</summary>
    public void Start()
    {
        if (_listener != null) throw new InvalidOperationException("the proxy is already started");
        var listener = new Socket(_options.Listen.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            listener.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            listener.Bind(_options.Listen);
            listener.Listen(1024);
        }
        catch
        {
            listener.Dispose();
            throw;
        }
        _listener = listener;
        _logger.LogInformation("Compute proxy listening on {Listen} (TLS {Tls}, default endpoint {DefaultEndpoint})",
            LocalEndPoint, _certificate != null ? "on" : "off", _options.DefaultEndpoint ?? "none");
        _acceptLoop = AcceptLoopAsync(listener);
    }

    private async Task AcceptLoopAsync(Socket listener)
    {
        while (!_stopping.IsCancellationRequested)
        {
            Socket client;
            try { client = await listener.AcceptAsync(_stopping.Token); }
            catch (OperationCanceledException) { return; }
            catch (ObjectDisposedException) { return; }
            catch (SocketException e)
            {
                // Transient (the client reset before accept, out of descriptors): keep serving the others.
                _logger.LogWarning("Accept failed: {Error}", e.Message);
                await Task.Delay(10);
                continue;
            }
            long id = Interlocked.Increment(ref _nextId);
            var connection = new ClientConnection(client, _options, _certificate, _router, _connector, CancelKeys, _locator, _metrics, _logger);
            var task = Task.Run(() => connection.RunAsync(_stopping.Token));
            _connections[id] = task;
            // Registered after the add, so a connection that already ended is still removed.
            _ = task.ContinueWith(_ => _connections.TryRemove(id, out var _), TaskScheduler.Default);
        }
    }

    Task IHostedService.StartAsync(CancellationToken cancellationToken)
    {
        Start();
        return Task.CompletedTask;
    }

    Task IHostedService.StopAsync(CancellationToken cancellationToken) => StopAsync();

    /// <summary>Stops accepting, ends every connection (sessions are closed) and waits for them.</summary>
    public async Task StopAsync()
    {
        if (_stopping.IsCancellationRequested) return;
        _stopping.Cancel();
        _listener?.Dispose();
        if (_acceptLoop != null) await _acceptLoop;
        await Task.WhenAll(_connections.Values);
        _logger.LogInformation("Compute proxy stopped");
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _stopping.Dispose();
        if (_options.TlsCertificate == null) _certificate?.Dispose();
    }
}
