using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Storage.Safekeeper.Replication;

/// <summary>
/// The safekeeper's PostgreSQL replication port (--pg-listen): accepts connections and runs each
/// as a <see cref="ReplicationConnection"/>. Bound when the host starts, so the READY line can
/// name the port; on stop, open connections are told and closed.
/// </summary>
internal sealed class ReplicationListener(IPEndPoint endpoint, Func<Socket, ReplicationConnection> connection, ILogger log) : BackgroundService
{
    private readonly Socket _socket = new(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
    private readonly HashSet<Task> _connections = new();

    /// <summary>The address bound (the OS's port where 0 was asked for).</summary>
    public IPEndPoint Bound => (IPEndPoint?)_socket.LocalEndPoint ?? throw new InvalidOperationException("not started");

    public override Task StartAsync(CancellationToken cancellationToken)
    {
        _socket.Bind(endpoint);
        _socket.Listen(128);
        log.LogInformation("serving PostgreSQL replication on {Address}", Bound);
        return base.StartAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stopping)
    {
        try
        {
            while (!stopping.IsCancellationRequested)
            {
                Socket client;
                try { client = await _socket.AcceptAsync(stopping); }
                catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset or SocketError.ConnectionAborted) { continue; }
                var run = Task.Run(() => connection(client).RunAsync(stopping), CancellationToken.None);
                lock (_connections) _connections.Add(run);
                _ = run.ContinueWith(t => { lock (_connections) _connections.Remove(t); }, TaskScheduler.Default);
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested) { }
        finally
        {
            _socket.Dispose();
            Task[] open;
            lock (_connections) open = [.. _connections];
            await Task.WhenAll(open); // each ends on the stop signal (and never throws: it handles its own failures)
        }
    }

    public override void Dispose()
    {
        _socket.Dispose();
        base.Dispose();
    }
}
