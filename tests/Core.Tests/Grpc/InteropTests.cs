using Google.Protobuf;
using Storage.Core.Grpc;
using Storage.Proto.Test;

namespace Storage.Core.Tests.Grpc;

/// <summary>Interop with a real gRPC implementation: Debian's python3-grpcio, both directions.</summary>
public class InteropTests
{
    private static readonly TimeSpan ScriptTimeout = TimeSpan.FromSeconds(60);
    private static readonly CallOptions Bounded = new(Timeout: TimeSpan.FromSeconds(20));

    [Fact]
    public async Task Python_client_calls_our_server()
    {
        await using var t = await GrpcTestServer.StartAsync();
        using var python = PythonProcess.Start("python_client.py", t.Server.GrpcAddress.Port.ToString());
        int exitCode = await python.WaitForExitAsync(ScriptTimeout);
        string report = $"exit {exitCode}\nstdout:\n{python.Output}\nstderr:\n{python.Errors}";
        Assert.True(exitCode == 0, report);
        foreach (string check in new[] { "unary", "server_streaming", "duplex", "error_status", "unimplemented", "deadline" })
            Assert.Contains($"PASS {check}", python.Output);
        Assert.Contains("ALL PASSED", python.Output);
        await GrpcCallTests.AssertStillServingAsync(t);
    }

    [Fact]
    public async Task Our_channel_calls_a_python_server()
    {
        using var python = PythonProcess.Start("python_server.py");
        string first = await python.FirstLineAsync(TimeSpan.FromSeconds(20));
        Assert.StartsWith("PORT ", first);
        using var channel = new GrpcChannel(new Uri($"http://127.0.0.1:{int.Parse(first["PORT ".Length..])}"));

        // Unary
        var reply = await channel.UnaryAsync(EchoMethods.Echo,
            new EchoRequest { Text = "hello python", Payload = ByteString.CopyFrom(9, 8, 7) }, Bounded);
        Assert.Equal("hello python", reply.Text);
        Assert.Equal(new byte[] { 9, 8, 7 }, reply.Payload.ToByteArray());

        // Server streaming
        using (var call = channel.ServerStreaming(EchoMethods.Stream, new EchoRequest { Text = "s", Repeat = 200 }, Bounded))
        {
            var indexes = new List<int>();
            await foreach (var r in call.ResponseStream.ReadAllAsync())
                indexes.Add(r.Index);
            Assert.Equal(Enumerable.Range(0, 200), indexes);
        }

        // Duplex: interleaved ping-pong, then half-close.
        using (var call = channel.Duplex(EchoMethods.Chat, Bounded))
        {
            for (int i = 0; i < 20; i++)
            {
                await call.RequestStream.WriteAsync(new EchoRequest { Text = $"p{i}" });
                var r = await call.ResponseStream.ReadAsync();
                Assert.Equal(($"p{i}", i), (r!.Text, r.Index));
            }
            await call.RequestStream.CompleteAsync();
            Assert.Null(await call.ResponseStream.ReadAsync());
        }

        // Error status with a non-ASCII message.
        const string detail = "quorum lost: ünïcödé 100%";
        var ex = await Assert.ThrowsAsync<RpcException>(() => channel.UnaryAsync(EchoMethods.Echo,
            new EchoRequest { Text = detail, FailWith = (int)GrpcStatusCode.FailedPrecondition }, Bounded));
        Assert.Equal(GrpcStatusCode.FailedPrecondition, ex.Status);
        Assert.Equal(detail, ex.Detail);

        // Error at the end of a stream.
        using (var call = channel.ServerStreaming(EchoMethods.Stream,
            new EchoRequest { Text = "gone", Repeat = 2, FailWith = (int)GrpcStatusCode.Aborted }, Bounded))
        {
            Assert.NotNull(await call.ResponseStream.ReadAsync());
            Assert.NotNull(await call.ResponseStream.ReadAsync());
            var streamEx = await Assert.ThrowsAsync<RpcException>(async () => await call.ResponseStream.ReadAsync());
            Assert.Equal((GrpcStatusCode.Aborted, "gone"), (streamEx.Status, streamEx.Detail));
        }

        // Unknown method and deadline, as a real server reports them.
        var missing = await Assert.ThrowsAsync<RpcException>(() => channel.UnaryAsync(EchoMethods.Missing, new EchoRequest(), Bounded));
        Assert.Equal(GrpcStatusCode.Unimplemented, missing.Status);
        var late = await Assert.ThrowsAsync<RpcException>(() => channel.UnaryAsync(EchoMethods.Echo,
            new EchoRequest { DelayMs = 5000 }, new CallOptions(Timeout: TimeSpan.FromMilliseconds(300))));
        Assert.Equal(GrpcStatusCode.DeadlineExceeded, late.Status);
    }
}
