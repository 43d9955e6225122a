using System.Net;
using Google.Protobuf;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging.Abstractions;
using Storage.Core.Grpc;
using Storage.Proto.Test;

namespace Storage.Core.Tests.Grpc;

/// <summary>Our client against our server, in process, over loopback HTTP/2.</summary>
public class GrpcCallTests
{
    private static readonly CallOptions Bounded = new(Timeout: TimeSpan.FromSeconds(20));

    [Fact]
    public async Task Unary_round_trips_text_and_payload()
    {
        await using var t = await GrpcTestServer.StartAsync();
        var reply = await t.Channel.UnaryAsync(EchoMethods.Echo,
            new EchoRequest { Text = "hello", Payload = ByteString.CopyFrom(1, 2, 3) }, Bounded);
        Assert.Equal("hello", reply.Text);
        Assert.Equal(new byte[] { 1, 2, 3 }, reply.Payload.ToByteArray());
    }

    [Fact]
    public async Task Unary_with_empty_messages_works()
    {
        await using var t = await GrpcTestServer.StartAsync();
        var reply = await t.Channel.UnaryAsync(EchoMethods.Echo, new EchoRequest(), Bounded);
        Assert.Equal("", reply.Text);
    }

    [Fact]
    public async Task Many_concurrent_unary_calls_share_the_channel()
    {
        await using var t = await GrpcTestServer.StartAsync();
        var calls = Enumerable.Range(0, 200).Select(i =>
            t.Channel.UnaryAsync(EchoMethods.Echo, new EchoRequest { Text = $"c{i}" }, Bounded));
        var replies = await Task.WhenAll(calls);
        Assert.Equal(Enumerable.Range(0, 200).Select(i => $"c{i}"), replies.Select(r => r.Text));
    }

    [Fact]
    public async Task Server_streaming_delivers_many_messages_in_order()
    {
        await using var t = await GrpcTestServer.StartAsync();
        var payload = ByteString.CopyFrom(new byte[8192]);
        using var call = t.Channel.ServerStreaming(EchoMethods.Stream,
            new EchoRequest { Text = "s", Repeat = 5000, Payload = payload }, Bounded);
        int expected = 0;
        await foreach (var reply in call.ResponseStream.ReadAllAsync())
        {
            Assert.Equal(expected++, reply.Index);
            Assert.Equal(8192, reply.Payload.Length);
        }
        Assert.Equal(5000, expected);
        Assert.Null(await call.ResponseStream.ReadAsync()); // stays completed
    }

    [Fact]
    public async Task Server_streaming_with_zero_messages_completes()
    {
        await using var t = await GrpcTestServer.StartAsync();
        using var call = t.Channel.ServerStreaming(EchoMethods.Stream, new EchoRequest { Repeat = 0 }, Bounded);
        Assert.Null(await call.ResponseStream.ReadAsync());
    }

    [Fact]
    public async Task Server_streaming_error_after_messages_surfaces_at_the_end()
    {
        await using var t = await GrpcTestServer.StartAsync();
        using var call = t.Channel.ServerStreaming(EchoMethods.Stream,
            new EchoRequest { Text = "broke", Repeat = 3, FailWith = (int)GrpcStatusCode.DataLoss }, Bounded);
        for (int i = 0; i < 3; i++)
            Assert.Equal(i, (await call.ResponseStream.ReadAsync())!.Index);
        var ex = await Assert.ThrowsAsync<RpcException>(async () => await call.ResponseStream.ReadAsync());
        Assert.Equal(GrpcStatusCode.DataLoss, ex.Status);
        Assert.Equal("broke", ex.Detail);
        await AssertStillServingAsync(t);
    }

    [Fact]
    public async Task Duplex_ping_pong_interleaves()
    {
        await using var t = await GrpcTestServer.StartAsync();
        using var call = t.Channel.Duplex(EchoMethods.Chat, Bounded);
        for (int i = 0; i < 100; i++)
        {
            await call.RequestStream.WriteAsync(new EchoRequest { Text = $"ping{i}" });
            var reply = await call.ResponseStream.ReadAsync();
            Assert.Equal($"ping{i}", reply!.Text);
            Assert.Equal(i, reply.Index);
        }
        await call.RequestStream.CompleteAsync();
        Assert.Null(await call.ResponseStream.ReadAsync());
    }

    [Fact]
    public async Task Duplex_messages_that_arrive_together_are_all_answered_without_more_input()
    {
        // Two frames queued back to back usually reach the server in one read. The second must be
        // handled even though the client sends nothing more until it has both replies (a proposer
        // waiting for an append response behaves like this).
        await using var t = await GrpcTestServer.StartAsync();
        using var call = t.Channel.Duplex(EchoMethods.Chat, Bounded);
        for (int round = 0; round < 20; round++)
        {
            await call.RequestStream.WriteAsync(new EchoRequest { Text = $"a{round}" });
            await call.RequestStream.WriteAsync(new EchoRequest { Text = $"b{round}" });
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            Assert.Equal($"a{round}", (await call.ResponseStream.ReadAsync(timeout.Token))!.Text);
            Assert.Equal($"b{round}", (await call.ResponseStream.ReadAsync(timeout.Token))!.Text);
        }
        await call.RequestStream.CompleteAsync();
        Assert.Null(await call.ResponseStream.ReadAsync());
    }

    [Fact]
    public async Task Duplex_bulk_in_both_directions()
    {
        await using var t = await GrpcTestServer.StartAsync();
        using var call = t.Channel.Duplex(EchoMethods.Chat, Bounded);
        const int count = 20_000;
        var payload = ByteString.CopyFrom(new byte[8192]);
        var writer = Task.Run(async () =>
        {
            for (int i = 0; i < count; i++)
                await call.RequestStream.WriteAsync(new EchoRequest { Text = "b", Payload = payload });
            await call.RequestStream.CompleteAsync();
        });
        int received = 0;
        await foreach (var reply in call.ResponseStream.ReadAllAsync())
        {
            Assert.Equal(received++, reply.Index);
            Assert.Equal(8192, reply.Payload.Length);
        }
        await writer;
        Assert.Equal(count, received);
    }

    [Fact]
    public async Task Duplex_handler_error_ends_the_call_with_its_status()
    {
        await using var t = await GrpcTestServer.StartAsync();
        using var call = t.Channel.Duplex(EchoMethods.Chat, Bounded);
        await call.RequestStream.WriteAsync(new EchoRequest { Text = "ok" });
        Assert.Equal("ok", (await call.ResponseStream.ReadAsync())!.Text);
        await call.RequestStream.WriteAsync(new EchoRequest { Text = "term mismatch", FailWith = (int)GrpcStatusCode.FailedPrecondition });
        var ex = await Assert.ThrowsAsync<RpcException>(async () => await call.ResponseStream.ReadAsync());
        Assert.Equal(GrpcStatusCode.FailedPrecondition, ex.Status);
        Assert.Equal("term mismatch", ex.Detail);
        // Writes after the call ended fail with an RpcException as well.
        await Assert.ThrowsAsync<RpcException>(async () => await call.RequestStream.WriteAsync(new EchoRequest { Text = "late" }));
        await AssertStillServingAsync(t);
    }

    [Theory]
    [InlineData(GrpcStatusCode.NotFound, "plain ascii detail")]
    [InlineData(GrpcStatusCode.InvalidArgument, "non-ASCII: Grüße, 日本語, emoji 🚀, percent 100% and %41")]
    [InlineData(GrpcStatusCode.Aborted, "line\nbreak\tand tab")]
    public async Task Error_status_and_message_round_trip(GrpcStatusCode status, string detail)
    {
        await using var t = await GrpcTestServer.StartAsync();
        var ex = await Assert.ThrowsAsync<RpcException>(() =>
            t.Channel.UnaryAsync(EchoMethods.Echo, new EchoRequest { Text = detail, FailWith = (int)status }, Bounded));
        Assert.Equal(status, ex.Status);
        Assert.Equal(detail, ex.Detail);
        Assert.Equal($"{status}: {detail}", ex.Message);
        await AssertStillServingAsync(t);
    }

    [Fact]
    public async Task Call_context_exposes_peer_deadline_and_headers()
    {
        await using var server = new GrpcServer(new GrpcServerOptions(), NullLoggerFactory.Instance);
        server.MapUnary(EchoMethods.Echo, (request, context) => Task.FromResult(new EchoReply
        {
            Text = $"{context.Peer}|{context.Deadline is not null}|{context.GetHeader("content-type")}|{context.GetHeader("x-absent") ?? "null"}",
        }));
        await server.StartAsync();
        using var channel = new GrpcChannel(new Uri($"http://127.0.0.1:{server.GrpcAddress.Port}"));
        var withDeadline = await channel.UnaryAsync(EchoMethods.Echo, new EchoRequest(), Bounded);
        Assert.Matches(@"^ipv4:127\.0\.0\.1:\d+\|True\|application/grpc\|null$", withDeadline.Text);
        var without = await channel.UnaryAsync(EchoMethods.Echo, new EchoRequest());
        Assert.Contains("|False|", without.Text);
    }

    [Fact]
    public async Task Handler_exception_becomes_unknown_with_its_message()
    {
        await using var server = new GrpcServer(new GrpcServerOptions(), NullLoggerFactory.Instance);
        server.MapUnary(EchoMethods.Echo, (_, _) => throw new InvalidOperationException("disk on fire"));
        await server.StartAsync();
        using var channel = new GrpcChannel(new Uri($"http://127.0.0.1:{server.GrpcAddress.Port}"));
        var ex = await Assert.ThrowsAsync<RpcException>(() => channel.UnaryAsync(EchoMethods.Echo, new EchoRequest(), Bounded));
        Assert.Equal(GrpcStatusCode.Unknown, ex.Status);
        Assert.Contains("disk on fire", ex.Detail);
    }

    [Fact]
    public async Task Deadline_exceeded_when_the_server_is_slow_and_the_handler_sees_it()
    {
        await using var t = await GrpcTestServer.StartAsync();
        var ex = await Assert.ThrowsAsync<RpcException>(() => t.Channel.UnaryAsync(EchoMethods.Echo,
            new EchoRequest { Text = "slow", DelayMs = 10_000 }, new CallOptions(Timeout: TimeSpan.FromMilliseconds(200))));
        Assert.Equal(GrpcStatusCode.DeadlineExceeded, ex.Status);
        // The grpc-timeout header made the server cancel the handler too.
        Assert.Equal("slow", await t.Service.FirstCancellation.Task.WaitAsync(TimeSpan.FromSeconds(10)));
        await AssertStillServingAsync(t);
    }

    [Fact]
    public async Task Server_side_deadline_reports_deadline_exceeded()
    {
        // The server's own deadline handling, without the client racing it: raw grpc-timeout.
        await using var t = await GrpcTestServer.StartAsync();
        using var raw = new RawGrpcClient(t.Address);
        var result = await raw.SendAsync(EchoMethods.Echo.Path,
            RawGrpcClient.Frame(new EchoRequest { Text = "late", DelayMs = 10_000 }.ToByteArray()),
            headers: [("grpc-timeout", "100m")]);
        Assert.Equal(GrpcStatusCode.DeadlineExceeded, result.Status);
    }

    [Fact]
    public async Task Client_cancellation_reaches_the_server_handler()
    {
        await using var t = await GrpcTestServer.StartAsync();
        using var cts = new CancellationTokenSource();
        var call = t.Channel.UnaryAsync(EchoMethods.Echo, new EchoRequest { Text = "cancel me", DelayMs = 30_000 },
            new CallOptions(CancellationToken: cts.Token));
        await t.Service.FirstDelayStarted.Task.WaitAsync(TimeSpan.FromSeconds(10)); // the server handler runs
        cts.Cancel();
        var ex = await Assert.ThrowsAsync<RpcException>(() => call);
        Assert.Equal(GrpcStatusCode.Cancelled, ex.Status);
        Assert.Equal("cancel me", await t.Service.FirstCancellation.Task.WaitAsync(TimeSpan.FromSeconds(10)));
        await AssertStillServingAsync(t);
    }

    [Fact]
    public async Task Disposing_a_duplex_call_cancels_it_on_the_server()
    {
        await using var t = await GrpcTestServer.StartAsync();
        var call = t.Channel.Duplex(EchoMethods.Chat);
        await call.RequestStream.WriteAsync(new EchoRequest { Text = "hang", DelayMs = 30_000 });
        await t.Service.FirstDelayStarted.Task.WaitAsync(TimeSpan.FromSeconds(10));
        call.Dispose();
        Assert.Equal("hang", await t.Service.FirstCancellation.Task.WaitAsync(TimeSpan.FromSeconds(10)));
        var ex = await Assert.ThrowsAsync<RpcException>(async () => await call.ResponseStream.ReadAsync());
        Assert.Equal(GrpcStatusCode.Cancelled, ex.Status);
        await AssertStillServingAsync(t);
    }

    [Fact]
    public async Task Unknown_method_is_unimplemented()
    {
        await using var t = await GrpcTestServer.StartAsync();
        var ex = await Assert.ThrowsAsync<RpcException>(() => t.Channel.UnaryAsync(EchoMethods.Missing, new EchoRequest(), Bounded));
        Assert.Equal(GrpcStatusCode.Unimplemented, ex.Status);
        Assert.Contains("/storage.test.Echo/Missing", ex.Detail);
        await AssertStillServingAsync(t);
    }

    [Fact]
    public async Task Oversized_request_is_rejected_by_the_server()
    {
        // The client may send 4 MiB, the server accepts 1 MiB: the server's limit answers.
        await using var t = await GrpcTestServer.StartAsync(
            new GrpcServerOptions { MaxReceiveMessageSize = 1 << 20 },
            new GrpcChannelOptions { MaxSendMessageSize = 4 << 20 });
        var ex = await Assert.ThrowsAsync<RpcException>(() => t.Channel.UnaryAsync(EchoMethods.Echo,
            new EchoRequest { Payload = ByteString.CopyFrom(new byte[2 << 20]) }, Bounded));
        Assert.Equal(GrpcStatusCode.ResourceExhausted, ex.Status);
        Assert.Contains("Received message larger than max", ex.Detail);
        Assert.Contains("vs. 1048576 bytes", ex.Detail);
        await AssertStillServingAsync(t);
    }

    [Fact]
    public async Task Oversized_request_is_rejected_by_the_client_before_sending()
    {
        await using var t = await GrpcTestServer.StartAsync(channelOptions: new GrpcChannelOptions { MaxSendMessageSize = 1000 });
        var ex = await Assert.ThrowsAsync<RpcException>(() => t.Channel.UnaryAsync(EchoMethods.Echo,
            new EchoRequest { Payload = ByteString.CopyFrom(new byte[2000]) }, Bounded));
        Assert.Equal(GrpcStatusCode.ResourceExhausted, ex.Status);
        Assert.Contains("Sending message larger than max", ex.Detail);
        await AssertStillServingAsync(t);
    }

    [Fact]
    public async Task Oversized_response_is_rejected_by_the_client()
    {
        await using var t = await GrpcTestServer.StartAsync(channelOptions: new GrpcChannelOptions { MaxReceiveMessageSize = 1 << 20 });
        var ex = await Assert.ThrowsAsync<RpcException>(() => t.Channel.UnaryAsync(EchoMethods.Echo,
            new EchoRequest { Repeat = 2 << 20 }, Bounded));
        Assert.Equal(GrpcStatusCode.ResourceExhausted, ex.Status);
        Assert.Contains("Received message larger than max", ex.Detail);
        Assert.Contains("vs. 1048576 bytes", ex.Detail);
        await AssertStillServingAsync(t);
    }

    [Fact]
    public async Task Oversized_response_is_refused_by_the_server()
    {
        await using var t = await GrpcTestServer.StartAsync(new GrpcServerOptions { MaxSendMessageSize = 1 << 20 });
        var ex = await Assert.ThrowsAsync<RpcException>(() => t.Channel.UnaryAsync(EchoMethods.Echo,
            new EchoRequest { Repeat = 2 << 20 }, Bounded));
        Assert.Equal(GrpcStatusCode.ResourceExhausted, ex.Status);
        Assert.Contains("Sending message larger than max", ex.Detail);
        await AssertStillServingAsync(t);
    }

    [Fact]
    public async Task Connection_refused_is_unavailable()
    {
        // Bind and release a port so nothing listens on it.
        var listener = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        using var channel = new GrpcChannel(new Uri($"http://127.0.0.1:{port}"));
        var ex = await Assert.ThrowsAsync<RpcException>(() => channel.UnaryAsync(EchoMethods.Echo, new EchoRequest(), Bounded));
        Assert.Equal(GrpcStatusCode.Unavailable, ex.Status);
        Assert.False(string.IsNullOrEmpty(ex.Detail));
    }

    [Fact]
    public async Task Server_stop_ends_idle_streams_promptly_with_unavailable()
    {
        var t = await GrpcTestServer.StartAsync();
        using var call = t.Channel.Duplex(EchoMethods.Chat);
        await call.RequestStream.WriteAsync(new EchoRequest { Text = "a" });
        Assert.Equal("a", (await call.ResponseStream.ReadAsync())!.Text);
        await t.Server.StopAsync();
        var ex = await Assert.ThrowsAsync<RpcException>(async () => await call.ResponseStream.ReadAsync());
        Assert.Equal(GrpcStatusCode.Unavailable, ex.Status);
        Assert.Equal("The server is shutting down", ex.Detail);
        await t.DisposeAsync();
    }

    [Fact]
    public async Task Http_endpoint_serves_get_handlers_over_http1()
    {
        await using var server = new GrpcServer(
            new GrpcServerOptions { HttpEndpoint = new IPEndPoint(IPAddress.Loopback, 0) }, NullLoggerFactory.Instance);
        server.MapHttpGet("/metrics", ctx => ctx.Response.WriteAsync("up 1\n"));
        await server.StartAsync();
        Assert.NotEqual(0, server.GrpcAddress.Port);
        Assert.NotNull(server.HttpAddress);
        Assert.NotEqual(server.GrpcAddress.Port, server.HttpAddress!.Port);
        using var http = new HttpClient();
        Assert.Equal("up 1\n", await http.GetStringAsync($"http://127.0.0.1:{server.HttpAddress.Port}/metrics"));
        var missing = await http.GetAsync($"http://127.0.0.1:{server.HttpAddress.Port}/nope");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
    }

    [Theory]
    [InlineData("1H", 36_000_000_000L)]
    [InlineData("2M", 1_200_000_000L)]
    [InlineData("3S", 30_000_000L)]
    [InlineData("250m", 2_500_000L)]
    [InlineData("1500u", 15_000L)]
    [InlineData("99999999n", 999_999L)]
    public void Grpc_timeout_parses_every_unit(string text, long ticks)
    {
        Assert.True(GrpcTimeout.TryParse(text, out var timeout));
        Assert.Equal(ticks, timeout.Ticks);
    }

    [Theory]
    [InlineData("")]
    [InlineData("5")]
    [InlineData("123456789S")]
    [InlineData("5x")]
    [InlineData("-5S")]
    public void Grpc_timeout_rejects_malformed_values(string text) => Assert.False(GrpcTimeout.TryParse(text, out _));

    [Fact]
    public void Grpc_timeout_format_round_trips_without_shortening()
    {
        foreach (var span in new[] { TimeSpan.FromMilliseconds(1.5), TimeSpan.FromSeconds(20), TimeSpan.FromHours(30), TimeSpan.FromDays(5000) })
        {
            Assert.True(GrpcTimeout.TryParse(GrpcTimeout.Format(span), out var parsed));
            Assert.True(parsed >= span);
            Assert.True(GrpcTimeout.Format(span).Length <= 9);
        }
    }

    [Fact]
    public void Grpc_message_percent_encoding_round_trips_and_tolerates_bad_escapes()
    {
        const string text = "ünï %2 \r\n 🚀";
        string encoded = GrpcMessageEncoding.Encode(text);
        Assert.All(encoded, c => Assert.InRange(c, ' ', '~'));
        Assert.Equal(text, GrpcMessageEncoding.Decode(encoded));
        Assert.Equal("100%", GrpcMessageEncoding.Decode("100%"));
        Assert.Equal("a%zzb", GrpcMessageEncoding.Decode("a%zzb"));
    }

    internal static async Task AssertStillServingAsync(GrpcTestServer t)
    {
        var reply = await t.Channel.UnaryAsync(EchoMethods.Echo, new EchoRequest { Text = "still here" }, Bounded);
        Assert.Equal("still here", reply.Text);
    }
}
