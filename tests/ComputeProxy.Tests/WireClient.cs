using Storage.Core.Postgres.Wire;
using System.Buffers.Binary;
using System.Net.Sockets;
using System.Text;
using Storage.ComputeProxy.Proxy;

namespace Storage.ComputeProxy.Tests;

/// <summary>A bare Postgres wire-protocol client for sending what real clients never send.</summary>
public sealed class WireClient : IAsyncDisposable
{
    private readonly TcpClient _tcp = new() { NoDelay = true };
    public Stream Stream { get; set; } = Stream.Null;
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(15);

    public static async Task<WireClient> ConnectAsync(int port)
    {
        var client = new WireClient();
        await client._tcp.ConnectAsync("127.0.0.1", port);
        client.Stream = client._tcp.GetStream();
        return client;
    }

    public async Task SendAsync(byte[] bytes)
    {
        await Stream.WriteAsync(bytes);
        await Stream.FlushAsync();
    }

    public void ShutdownSend() => _tcp.Client.Shutdown(SocketShutdown.Send);

    /// <summary>One byte (the answer to SSLRequest / GSSENCRequest), or -1 at end of stream.</summary>
    public async Task<int> ReadByteAsync()
    {
        var one = new byte[1];
        using var cts = new CancellationTokenSource(Timeout);
        return await Stream.ReadAsync(one, cts.Token) == 0 ? -1 : one[0];
    }

    /// <summary>The next backend message (type and body), or null at end of stream.</summary>
    public async Task<(char Type, byte[] Body)?> ReadMessageAsync()
    {
        using var cts = new CancellationTokenSource(Timeout);
        var header = new byte[5];
        try { await Stream.ReadExactlyAsync(header, cts.Token); }
        catch (EndOfStreamException) { return null; }
        var body = new byte[BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(1)) - 4];
        await Stream.ReadExactlyAsync(body, cts.Token);
        return ((char)header[0], body);
    }

    /// <summary>Expects an ErrorResponse followed by the close; returns its fields.</summary>
    public async Task<Dictionary<char, string>> ReadFatalErrorAsync()
    {
        var message = await ReadMessageAsync();
        Assert.NotNull(message);
        Assert.Equal('E', message.Value.Type);
        var fields = ErrorResponse.ParseFields(message.Value.Body);
        Assert.Equal("FATAL", fields['S']);
        Assert.Null(await ReadMessageAsync());
        return fields;
    }

    /// <summary>True when the proxy closes the connection (within the timeout) without sending anything.</summary>
    public async Task<bool> ClosedWithoutAnswerAsync()
    {
        var buffer = new byte[256];
        using var cts = new CancellationTokenSource(Timeout);
        try { return await Stream.ReadAsync(buffer, cts.Token) == 0; }
        catch (IOException) { return true; }
    }

    public static byte[] Int32Packet(int code)
    {
        var bytes = new byte[8];
        BinaryPrimitives.WriteInt32BigEndian(bytes, 8);
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4), code);
        return bytes;
    }

    public static byte[] StartupMessage(params (string Name, string Value)[] parameters) =>
        new StartupPacket.Startup(3 << 16, parameters.Select(p => new KeyValuePair<string, string>(p.Name, p.Value)).ToList()).Serialize();

    public static byte[] Ascii(string text) => Encoding.ASCII.GetBytes(text);

    public async ValueTask DisposeAsync()
    {
        await Stream.DisposeAsync();
        _tcp.Dispose();
    }
}
