using Storage.Core.Postgres.Wire;
using System.IO.Pipelines;
using System.Net.Sockets;

namespace Storage.ComputeProxy.Proxy;

/// <summary>A TCP connection to a compute's PostgreSQL that has been sent the startup packet and has answered.</summary>
public sealed class ComputeConnection : IAsyncDisposable
{
    /// <summary>PostgreSQL's "cannot connect now": starting up, in crash recovery, or shutting down.</summary>
    private const string CannotConnectNow = "57P03";

    public ComputeAddress Address { get; }
    public Socket Socket { get; }
    public NetworkStream Stream { get; }
    public PipeReader Reader { get; }

    private ComputeConnection(ComputeAddress address, Socket socket)
    {
        Address = address;
        Socket = socket;
        Stream = new NetworkStream(socket, ownsSocket: true);
        Reader = PipeReader.Create(Stream, Pipes.ReaderOptions);
    }

    /// <summary>
    /// Connects, sends <paramref name="startupPacket"/> and waits for PostgreSQL's first message, all
    /// within <paramref name="timeout"/>. A compute that closes before answering (it is dying), or
    /// answers "cannot connect now" (its PostgreSQL is being restarted), fails like a refused connect,
    /// so the caller retries before the client has seen anything.
    /// </summary>
    public static async Task<ComputeConnection> OpenAsync(ComputeAddress address, byte[] startupPacket, TimeSpan timeout, CancellationToken ct)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(timeout);
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        ComputeConnection? connection = null;
        try
        {
            await socket.ConnectAsync(address.Host, address.Port, deadline.Token);
            connection = new ComputeConnection(address, socket);
            await connection.Stream.WriteAsync(startupPacket, deadline.Token);
            var first = await connection.Reader.ReadAsync(deadline.Token);
            Dictionary<char, string>? error;
            while (!ErrorResponse.TryPeek(first.Buffer, out error) && !first.IsCompleted)
            {
                connection.Reader.AdvanceTo(first.Buffer.Start, first.Buffer.End);
                first = await connection.Reader.ReadAsync(deadline.Token);
            }
            if (first.Buffer.IsEmpty) throw new IOException("the compute closed the connection before answering");
            if (error is not null && error.GetValueOrDefault('C') == CannotConnectNow)
                throw new IOException($"the compute does not accept connections yet: {error.GetValueOrDefault('M')}");
            // Nothing consumed: the relay's first read returns these bytes at once.
            connection.Reader.AdvanceTo(first.Buffer.Start);
            return connection;
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            await DisposeAsync(connection, socket);
            throw new TimeoutException($"no answer within {timeout.TotalSeconds:0.#} s");
        }
        catch
        {
            await DisposeAsync(connection, socket);
            throw;
        }
    }

    private static async ValueTask DisposeAsync(ComputeConnection? connection, Socket socket)
    {
        if (connection != null) await connection.DisposeAsync();
        else socket.Dispose();
    }

    public async ValueTask DisposeAsync()
    {
        await Reader.CompleteAsync();
        await Stream.DisposeAsync();
    }
}

internal static class Pipes
{
    /// <summary>Larger than the default 4 KiB so bulk results move in fewer reads and writes.</summary>
    public static readonly StreamPipeReaderOptions ReaderOptions = new(bufferSize: 16 * 1024, minimumReadSize: 4 * 1024, leaveOpen: true);
}
