using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Storage.Core.Postgres.Wire;

namespace Storage.Core.Postgres.Replication;

/// <summary>
/// A physical streaming-replication client (a "standby") of one PostgreSQL: start-up with
/// <c>replication=true</c>, <c>START_REPLICATION PHYSICAL</c>, then XLogData in, status updates out.
///
/// Written for the walproposer rather than using Npgsql's replication connection because what a
/// standby reports is the engine's durability promise: the write, flush and apply positions must
/// all be the quorum commit LSN and never more, and Npgsql sets the write position to whatever it
/// has received by itself (its keepalive replies and timer send it too). Here nothing is reported
/// that the caller did not say. Only trust authentication is spoken: the walproposer connects over
/// its compute's private socket directory.
/// </summary>
public sealed class PhysicalReplicationClient : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly PipeReader _reader;
    private readonly PipeWriter _writer;
    private readonly SemaphoreSlim _writeLock = new(1, 1);

    private PhysicalReplicationClient(Socket socket)
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: true);
        _reader = PipeReader.Create(_stream, new StreamPipeReaderOptions(bufferSize: 256 * 1024, minimumReadSize: 64 * 1024));
        _writer = PipeWriter.Create(_stream);
    }

    /// <summary>
    /// Connects and completes start-up. <paramref name="host"/> is a socket directory when it starts
    /// with '/' (as in libpq), else a TCP host.
    /// </summary>
    public static async Task<PhysicalReplicationClient> ConnectAsync(string host, int port, string user, string applicationName, CancellationToken ct)
    {
        Socket socket;
        EndPoint endpoint;
        if (host.StartsWith('/'))
        {
            socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            endpoint = new UnixDomainSocketEndPoint(Path.Combine(host, $".s.PGSQL.{port}"));
        }
        else
        {
            socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            endpoint = new DnsEndPoint(host, port);
        }
        try { await socket.ConnectAsync(endpoint, ct); }
        catch
        {
            socket.Dispose();
            throw;
        }
        var client = new PhysicalReplicationClient(socket);
        try
        {
            PgFraming.WriteStartup(client._writer, [("user", user), ("replication", "true"), ("application_name", applicationName)]);
            await client._writer.FlushAsync(ct);
            await client.ReadUntilAsync((byte)'Z', ct, message =>
            {
                if (message.Type != (byte)'R') return;
                var reader = new SequenceReader<byte>(message.Body);
                reader.TryReadBigEndian(out int code);
                if (code != 0)
                    throw new NotSupportedException($"PostgreSQL asks for authentication method {code}; the replication client speaks only trust (connect over the private socket directory)");
            });
            return client;
        }
        catch
        {
            await client.DisposeAsync();
            throw;
        }
    }

    /// <summary>Asks for WAL from <paramref name="start"/> on the server's current timeline; returns once streaming began.</summary>
    public async Task StartReplicationAsync(Lsn start, CancellationToken ct)
    {
        await _writeLock.WaitAsync(ct);
        try
        {
            PgFraming.WriteQuery(_writer, $"START_REPLICATION PHYSICAL {start}");
            await _writer.FlushAsync(ct);
        }
        finally { _writeLock.Release(); }
        await ReadUntilAsync((byte)'W', ct, _ => { });
    }

    /// <summary>
    /// Streams until the server ends the copy, the connection breaks (an exception) or
    /// <paramref name="ct"/> fires. Each XLogData goes to <paramref name="onWal"/> on this loop (its
    /// data is valid until the returned task completes; nothing more is read before, which is how
    /// a consumer applies backpressure); a keepalive that asks for a reply is answered with
    /// <paramref name="currentStatus"/>.
    /// </summary>
    public async Task ReceiveAsync(Func<XLogData, ValueTask> onWal, Func<StandbyStatus> currentStatus, CancellationToken ct)
    {
        while (true)
        {
            var result = await _reader.ReadAsync(ct);
            var buffer = result.Buffer;
            bool replyRequested = false, ended = false;
            while (PgFraming.TryRead(ref buffer, out var message))
            {
                PgFraming.ThrowIfError(message);
                if (message.Type == (byte)'c') { ended = true; break; } // CopyDone
                if (message.Type != (byte)'d') continue; // notices and the like
                switch (ReplicationMessages.Kind(message.Body))
                {
                    case (byte)'w':
                        var pending = onWal(ReplicationMessages.ReadXLogData(message.Body));
                        if (!pending.IsCompletedSuccessfully) await pending;
                        break;
                    case (byte)'k': replyRequested |= ReplicationMessages.ReadKeepalive(message.Body).ReplyRequested; break;
                }
            }
            _reader.AdvanceTo(buffer.Start, buffer.End);
            if (replyRequested) await SendStatusAsync(currentStatus(), ct);
            if (ended) return;
            if (result.IsCompleted) throw new EndOfStreamException("PostgreSQL closed the replication connection");
        }
    }

    /// <summary>Sends a standby status update (safe to call beside <see cref="ReceiveAsync"/>).</summary>
    public async ValueTask SendStatusAsync(StandbyStatus status, CancellationToken ct)
    {
        await _writeLock.WaitAsync(ct);
        try
        {
            ReplicationMessages.WriteStandbyStatus(_writer, status);
            await _writer.FlushAsync(ct);
        }
        finally { _writeLock.Release(); }
    }

    /// <summary>Reads messages up to one of type <paramref name="until"/>, throwing the server's errors.</summary>
    private async Task ReadUntilAsync(byte until, CancellationToken ct, Action<PgMessage> each)
    {
        while (true)
        {
            var next = await PgFraming.ReadAsync(_reader, ct)
                ?? throw new EndOfStreamException("PostgreSQL closed the connection during start-up");
            var (message, consumed) = next;
            try
            {
                PgFraming.ThrowIfError(message);
                each(message);
                if (message.Type == until) return;
            }
            finally { _reader.AdvanceTo(consumed); }
        }
    }

    public async ValueTask DisposeAsync()
    {
        try { await _reader.CompleteAsync(); } catch (Exception) { }
        try { await _writer.CompleteAsync(); } catch (Exception) { }
        await _stream.DisposeAsync();
        _socket.Dispose();
        _writeLock.Dispose();
    }
}
