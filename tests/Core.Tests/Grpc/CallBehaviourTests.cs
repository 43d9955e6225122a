using Grpc.Core;
using Storage.Core.Errors;
using Storage.Core.Rpc;
using Storage.Proto.Test;
using Storage.Testing;

namespace Storage.Core.Tests.Grpc;

/// <summary>
/// What every service's callers rely on, through our hosting and channels: domain exceptions
/// become the right status codes with their details as trailers; deadlines and cancellation reach
/// the handler; a peer that is not there is a refusal.
/// </summary>
public class CallBehaviourTests
{
    [Theory]
    [InlineData(nameof(FailureKind.InvalidArgument), StatusCode.InvalidArgument)]
    [InlineData(nameof(FailureKind.NotFound), StatusCode.NotFound)]
    [InlineData(nameof(FailureKind.AlreadyExists), StatusCode.AlreadyExists)]
    [InlineData(nameof(FailureKind.FailedPrecondition), StatusCode.FailedPrecondition)]
    [InlineData(nameof(FailureKind.Superseded), StatusCode.Aborted)]
    [InlineData(nameof(FailureKind.OutOfRange), StatusCode.OutOfRange)]
    [InlineData(nameof(FailureKind.Unavailable), StatusCode.Unavailable)]
    [InlineData(nameof(FailureKind.ResourceExhausted), StatusCode.ResourceExhausted)]
    [InlineData(nameof(FailureKind.DataLoss), StatusCode.DataLoss)]
    [InlineData(nameof(FailureKind.Unauthenticated), StatusCode.Unauthenticated)]
    [InlineData(nameof(FailureKind.PermissionDenied), StatusCode.PermissionDenied)]
    public async Task A_domain_exception_becomes_its_status_code_with_its_message(string kind, StatusCode expected)
    {
        await using var t = await GrpcTestServer.StartAsync();
        var e = await Assert.ThrowsAsync<RpcException>(async () =>
            await t.Client.EchoAsync(new EchoRequest { Text = "what went wrong", FailKind = kind }, deadline: GrpcTestServer.Deadline()));
        Assert.Equal((expected, "what went wrong"), (e.StatusCode, e.Status.Detail));
    }

    [Fact]
    public async Task Facts_a_caller_acts_on_travel_as_trailers()
    {
        await using var t = await GrpcTestServer.StartAsync();
        var stale = await Assert.ThrowsAsync<RpcException>(async () =>
            await t.Client.EchoAsync(new EchoRequest { Text = "superseded", FailKind = "stale-term" }, deadline: GrpcTestServer.Deadline()));
        Assert.Equal(42UL, stale.SafekeeperTerm());
        var removed = await Assert.ThrowsAsync<RpcException>(async () =>
            await t.Client.EchoAsync(new EchoRequest { FailKind = "wal-removed" }, deadline: GrpcTestServer.Deadline()));
        Assert.Equal(new Lsn(0x0200_0000), removed.FirstAvailableLsn());
        Assert.Null(stale.FirstAvailableLsn());
    }

    [Fact]
    public async Task A_deadline_ends_the_call_and_the_handler_sees_it()
    {
        await using var t = await GrpcTestServer.StartAsync();
        await t.AssertStillServingAsync(); // the connection made first: the deadline is for the handler, not the handshake
        var e = await Assert.ThrowsAsync<RpcException>(async () =>
            await t.Client.EchoAsync(new EchoRequest { Text = "slow", DelayMs = 30_000 }, deadline: DateTime.UtcNow.AddSeconds(5))); // long enough for the handler to start on a loaded machine
        Assert.Equal(StatusCode.DeadlineExceeded, e.StatusCode);
        Assert.Equal("slow", await t.Service.FirstCancellation.Task.WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task Client_cancellation_reaches_the_server_handler()
    {
        await using var t = await GrpcTestServer.StartAsync();
        using var cancel = new CancellationTokenSource();
        var call = t.Client.EchoAsync(new EchoRequest { Text = "cancelled", DelayMs = 30_000 }, deadline: GrpcTestServer.Deadline(60), cancellationToken: cancel.Token);
        await t.Service.FirstDelayStarted.Task.WaitAsync(TimeSpan.FromSeconds(10));
        cancel.Cancel();
        var e = await Assert.ThrowsAsync<RpcException>(async () => await call);
        Assert.Equal(StatusCode.Cancelled, e.StatusCode);
        Assert.Equal("cancelled", await t.Service.FirstCancellation.Task.WaitAsync(TimeSpan.FromSeconds(10)));
        await t.AssertStillServingAsync();
    }

    [Fact]
    public async Task Streams_in_both_directions_interleave_on_one_channel()
    {
        await using var t = await GrpcTestServer.StartAsync();
        using var chat = t.Client.Chat(deadline: GrpcTestServer.Deadline());
        for (int i = 0; i < 100; i++)
        {
            await chat.RequestStream.WriteAsync(new EchoRequest { Text = $"m{i}" });
            Assert.Equal(i, (await chat.ResponseStream.ReadNextAsync())!.Index);
        }
        await chat.RequestStream.CompleteAsync();
        Assert.Null(await chat.ResponseStream.ReadNextAsync());
        var replies = await Task.WhenAll(Enumerable.Range(0, 50).Select(async i =>
            (await t.Client.EchoAsync(new EchoRequest { Text = $"c{i}" }, deadline: GrpcTestServer.Deadline())).Text));
        Assert.Equal(Enumerable.Range(0, 50).Select(i => $"c{i}"), replies);
    }

    [Fact]
    public async Task A_peer_that_is_not_there_is_a_refusal_not_a_hang()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        int port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop(); // nothing listens there now
        using var channel = GrpcChannels.Create(new Uri($"http://127.0.0.1:{port}"));
        var e = await Assert.ThrowsAsync<RpcException>(async () =>
            await new Echo.EchoClient(channel).EchoAsync(new EchoRequest(), deadline: GrpcTestServer.Deadline()));
        Assert.True(RpcErrors.IsRefusal(e), e.ToString());
    }
}
