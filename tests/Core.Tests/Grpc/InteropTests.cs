using Google.Protobuf;
using Grpc.Core;
using Storage.Core.Rpc;
using Storage.Proto.Test;
using Storage.Testing;

namespace Storage.Core.Tests.Grpc;

/// <summary>
/// Our configuration of the standard gRPC stack against another implementation, Debian's
/// python3-grpcio, both directions: our hosting (ServiceHost) and our channels (GrpcChannels).
/// </summary>
public class InteropTests
{
    private static readonly TimeSpan ScriptTimeout = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Python_client_calls_our_server()
    {
        await using var t = await GrpcTestServer.StartAsync();
        using var python = PythonProcess.Start("python_client.py", t.Address.Port.ToString());
        int exitCode = await python.WaitForExitAsync(ScriptTimeout);
        string report = $"exit {exitCode}\nstdout:\n{python.Output}\nstderr:\n{python.Errors}";
        Assert.True(exitCode == 0, report);
        foreach (string check in new[] { "unary", "server_streaming", "duplex", "error_status", "unimplemented", "deadline" })
            Assert.Contains($"PASS {check}", python.Output);
        Assert.Contains("ALL PASSED", python.Output);
        await t.AssertStillServingAsync();
    }

    [Fact]
    public async Task Our_channel_calls_a_python_server()
    {
        using var python = PythonProcess.Start("python_server.py");
        string first = await python.FirstLineAsync(TimeSpan.FromSeconds(20));
        Assert.StartsWith("PORT ", first);
        using var channel = GrpcChannels.Create(new Uri($"http://127.0.0.1:{int.Parse(first["PORT ".Length..])}"));
        var client = new Echo.EchoClient(channel);

        var reply = await client.EchoAsync(new EchoRequest { Text = "hello python", Payload = ByteString.CopyFrom(9, 8, 7) }, deadline: GrpcTestServer.Deadline());
        Assert.Equal("hello python", reply.Text);
        Assert.Equal(new byte[] { 9, 8, 7 }, reply.Payload.ToByteArray());

        using (var call = client.Stream(new EchoRequest { Text = "s", Repeat = 200 }, deadline: GrpcTestServer.Deadline()))
        {
            var indexes = new List<int>();
            await foreach (var r in call.ResponseStream.ReadAllAsync()) indexes.Add(r.Index);
            Assert.Equal(Enumerable.Range(0, 200), indexes);
        }

        // Duplex: interleaved ping-pong, then half-close.
        using (var call = client.Chat(deadline: GrpcTestServer.Deadline()))
        {
            for (int i = 0; i < 20; i++)
            {
                await call.RequestStream.WriteAsync(new EchoRequest { Text = $"p{i}" });
                var r = await call.ResponseStream.ReadNextAsync();
                Assert.Equal(($"p{i}", i), (r!.Text, r.Index));
            }
            await call.RequestStream.CompleteAsync();
            Assert.Null(await call.ResponseStream.ReadNextAsync());
        }

        // Error status with a non-ASCII message, at once and at the end of a stream.
        const string detail = "quorum lost: ünïcödé 100%";
        var ex = await Assert.ThrowsAsync<RpcException>(async () => await client.EchoAsync(
            new EchoRequest { Text = detail, FailWith = (int)StatusCode.FailedPrecondition }, deadline: GrpcTestServer.Deadline()));
        Assert.Equal((StatusCode.FailedPrecondition, detail), (ex.StatusCode, ex.Status.Detail));
        using (var call = client.Stream(new EchoRequest { Text = "gone", Repeat = 2, FailWith = (int)StatusCode.Aborted }, deadline: GrpcTestServer.Deadline()))
        {
            Assert.NotNull(await call.ResponseStream.ReadNextAsync());
            Assert.NotNull(await call.ResponseStream.ReadNextAsync());
            var streamEx = await Assert.ThrowsAsync<RpcException>(() => call.ResponseStream.ReadNextAsync());
            Assert.Equal((StatusCode.Aborted, "gone"), (streamEx.StatusCode, streamEx.Status.Detail));
        }

        // Unknown method and deadline, as a real server reports them.
        var missing = await Assert.ThrowsAsync<RpcException>(async () => await client.MissingAsync(new EchoRequest(), deadline: GrpcTestServer.Deadline()));
        Assert.Equal(StatusCode.Unimplemented, missing.StatusCode);
        var late = await Assert.ThrowsAsync<RpcException>(async () => await client.EchoAsync(new EchoRequest { DelayMs = 5000 }, deadline: DateTime.UtcNow.AddMilliseconds(300)));
        Assert.Equal(StatusCode.DeadlineExceeded, late.StatusCode);
    }
}
