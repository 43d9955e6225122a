using Storage.Core.Postgres.Wire;
using System.IO.Pipelines;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;

namespace Storage.ComputeProxy.Proxy;

/// <summary>
/// One client connection: negotiates TLS, reads the startup packet (or a CancelRequest), routes it
/// to an endpoint, connects to its compute and relays the session both ways. Any refusal is an
/// ErrorResponse (FATAL) followed by close; nothing a client sends can escape this type.
/// </summary>
internal sealed class ClientConnection(
    Socket socket, ProxyOptions options, X509Certificate2? certificate, EndpointRouter router,
    ComputeConnector connector, CancelKeyRegistry cancelKeys, IComputeLocator locator, ProxyMetrics metrics, ILogger logger)
{
    private readonly string _client = socket.RemoteEndPoint?.ToString() ?? "?";
    private Stream _stream = new NetworkStream(socket, ownsSocket: true);
    private PipeReader _reader = null!;
    private string? _sniHost;

    public async Task RunAsync(CancellationToken stopping)
    {
        metrics.Accepted.Inc();
        socket.NoDelay = true;
        _reader = PipeReader.Create(_stream, Pipes.ReaderOptions);
        try
        {
            var startup = await NegotiateAsync(stopping);
            if (startup == null) return;
            var route = router.Route(startup, _sniHost);
            logger.LogInformation("Client {Client} connects to endpoint {Endpoint} (from {Source}) as user {User}",
                _client, route.EndpointId, route.Source, startup.Get("user"));
            var compute = await connector.ConnectAsync(route.EndpointId, route.Forward.Serialize(), stopping);
            await using (compute) await RelayAsync(route.EndpointId, compute, stopping);
        }
        catch (ProxyRejectException e)
        {
            metrics.Failed(e.Reason);
            logger.LogWarning("Refused client {Client}: {SqlState} {Message}", _client, e.SqlState, e.Message);
            await TrySendAsync(ErrorResponse.Build("FATAL", e.SqlState, e.Message, e.Hint));
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            await TrySendAsync(ErrorResponse.Build("FATAL", SqlStates.AdminShutdown, "terminating connection: the proxy is shutting down"));
        }
        catch (Exception e) when (e is IOException or SocketException or AuthenticationException or ObjectDisposedException)
        {
            metrics.Failed(e is AuthenticationException ? "tls" : "client_io");
            logger.LogInformation("Client {Client} connection lost before its session started: {Error}", _client, e.Message);
        }
        catch (Exception e)
        {
            metrics.Failed("internal");
            logger.LogError(e, "Client {Client}: unexpected failure", _client);
        }
        finally
        {
            await _reader.CompleteAsync();
            await _stream.DisposeAsync();
        }
    }

    /// <summary>SSLRequest / GSSENCRequest answers until the StartupMessage; null when there is no session to start.</summary>
    private async Task<StartupPacket.Startup?> NegotiateAsync(CancellationToken stopping)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        deadline.CancelAfter(options.StartupTimeout);
        bool sslAnswered = false, gssAnswered = false;
        try
        {
            while (true)
            {
                var packet = await StartupPacketReader.ReadAsync(_reader, deadline.Token);
                switch (packet)
                {
                    case null:
                        metrics.Failed("closed");
                        logger.LogInformation("Client {Client} closed the connection before a whole startup packet", _client);
                        return null;
                    case StartupPacket.Startup startup:
                        return startup;
                    case StartupPacket.CancelRequest cancel:
                        await ForwardCancelAsync(cancel, stopping);
                        return null;
                    case StartupPacket.SslRequest when !sslAnswered:
                        sslAnswered = true;
                        // A client must wait for the answer; bytes already here would bypass TLS (CVE-2021-23214).
                        if (StartupPacketReader.HasBufferedBytes(_reader))
                            throw ProxyRejectException.Protocol("received unencrypted data after SSL request");
                        await _stream.WriteAsync(certificate != null ? "S"u8.ToArray() : "N"u8.ToArray(), deadline.Token);
                        if (certificate != null) await StartTlsAsync(deadline.Token);
                        break;
                    case StartupPacket.GssEncRequest when !gssAnswered && _stream is not SslStream:
                        gssAnswered = true;
                        if (StartupPacketReader.HasBufferedBytes(_reader))
                            throw ProxyRejectException.Protocol("received unencrypted data after GSSAPI encryption request");
                        await _stream.WriteAsync("N"u8.ToArray(), deadline.Token);
                        break;
                    default:
                        throw ProxyRejectException.Protocol("unexpected SSL or GSSAPI encryption request");
                }
            }
        }
        catch (OperationCanceledException) when (!stopping.IsCancellationRequested)
        {
            throw new ProxyRejectException(SqlStates.ProtocolViolation, "timeout",
                $"no complete startup packet within {options.StartupTimeout.TotalSeconds:0.#} s");
        }
    }

    private async Task StartTlsAsync(CancellationToken ct)
    {
        await _reader.CompleteAsync();
        var tls = new SslStream(_stream, leaveInnerStreamOpen: false);
        _stream = tls;
        await tls.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
        {
            ServerCertificate = certificate,
            EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
        }, ct);
        _sniHost = string.IsNullOrEmpty(tls.TargetHostName) ? null : tls.TargetHostName;
        _reader = PipeReader.Create(_stream, Pipes.ReaderOptions);
    }

    /// <summary>Sends the CancelRequest to the compute whose session handed out that key; PostgreSQL answers nothing, neither do we.</summary>
    private async Task ForwardCancelAsync(StartupPacket.CancelRequest cancel, CancellationToken stopping)
    {
        var owner = cancelKeys.Find(cancel.Key);
        if (owner == null)
        {
            metrics.Cancel("unknown_key");
            logger.LogInformation("CancelRequest from {Client} for unknown backend {Pid}", _client, cancel.ProcessId);
            return;
        }
        try
        {
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(stopping);
            deadline.CancelAfter(options.ConnectTimeout);
            using var compute = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            await compute.ConnectAsync(owner.Host, owner.Port, deadline.Token);
            await compute.SendAsync(cancel.Raw, SocketFlags.None, deadline.Token);
            // PostgreSQL closes once it has signalled the backend; clients such as Npgsql wait for that close.
            var sink = new byte[64];
            while (await compute.ReceiveAsync(sink, SocketFlags.None, deadline.Token) > 0) { }
            metrics.Cancel("forwarded");
            logger.LogInformation("CancelRequest from {Client} for backend {Pid} forwarded to compute {Compute}", _client, cancel.ProcessId, owner);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException)
        {
            metrics.Cancel("failed");
            logger.LogWarning("CancelRequest from {Client} for backend {Pid} could not reach compute {Compute}: {Error}", _client, cancel.ProcessId, owner, e.Message);
        }
    }

    private async Task RelayAsync(string endpointId, ComputeConnection compute, CancellationToken stopping)
    {
        var keys = new List<byte[]>();
        var sniffer = new BackendKeySniffer
        {
            KeyFound = key => { cancelKeys.Register(key, compute.Address); keys.Add(key); },
        };
        locator.SessionStarted(endpointId);
        metrics.Sessions.Inc();
        metrics.ActiveSessions.Inc();
        logger.LogInformation("Session of client {Client} on endpoint {Endpoint} relayed to compute {Host}:{Port} (VM {VmId})",
            _client, endpointId, compute.Address.Host, compute.Address.Port, compute.Address.VmId);
        var retired = locator.Retired(compute.Address);
        using var session = CancellationTokenSource.CreateLinkedTokenSource(stopping, retired);
        try
        {
            var up = Relay.CopyAsync(_reader, _stream, compute.Stream, metrics.ClientToCompute, null, session.Token);
            var down = Relay.CopyAsync(compute.Reader, compute.Stream, _stream, metrics.ComputeToClient, sniffer, session.Token);
            // The session ends when either side closes; closing the other side ends the other copy.
            var first = await Task.WhenAny(up, down);
            session.Cancel();
            compute.Socket.Close();
            socket.Close();
            await Task.WhenAll(Quietly(up), Quietly(down));
            var side = retired.IsCancellationRequested ? "its compute was declared dead; the proxy" : first == up ? "client" : "compute";
            logger.LogInformation("Session of client {Client} on endpoint {Endpoint} ended ({Side} closed{Error})",
                _client, endpointId, side, first.Exception is { } e ? ": " + e.GetBaseException().Message : "");
        }
        finally
        {
            foreach (var key in keys) cancelKeys.Unregister(key);
            metrics.ActiveSessions.Dec();
            locator.SessionEnded(endpointId);
        }
    }

    private static async Task Quietly(Task task)
    {
        try { await task; }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException) { }
    }

    private async Task TrySendAsync(byte[] message)
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await _stream.WriteAsync(message, timeout.Token);
            await _stream.FlushAsync(timeout.Token);
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException or InvalidOperationException) { }
    }
}
