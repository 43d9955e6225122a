using System.Collections.Concurrent;
using System.Net;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Storage.Core.Hosting;
using Storage.Core.Processes;
using Storage.Core.Rpc;
using Storage.Proto.Pageserver;
using Storage.Testing;
using PageserverGrpc = Storage.Proto.Pageserver.Pageserver;

namespace Storage.StorageController.Tests;

/// <summary>
/// <see cref="Heartbeats"/> against an in-process pageserver stand-in (hosted as every service is),
/// on a fake clock: the heartbeat interval and the liveness timeouts are the fake clock's.
/// </summary>
public sealed class HeartbeatsTests : IDisposable
{
    // A heartbeat's real deadline is half the unresponsive timeout: 30 s, so that the first call (a new
    // channel to a freshly started server, on a loaded machine) is not failed and retried on a fake clock.
    private static readonly ControllerOptions Options = new() { HeartbeatMs = 500, FailureTimeoutMs = 2000, UnresponsiveTimeoutMs = 60_000 };
    private static readonly TimeSpan Bounded = TimeSpan.FromSeconds(60);
    private readonly string _root = Directory.CreateTempSubdirectory("sc-heartbeats-").FullName;
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public async Task Heartbeats_come_once_per_fake_interval_over_one_connection_and_a_refusing_node_is_offline_after_the_failure_timeout()
    {
        // The process's default token is set when the test-support module first loads (by whichever
        // test touches it first); a channel is per address and token, so it must not change while
        // this test counts connections.
        Assert.Equal(TestAuth.AdminToken, GrpcChannels.DefaultToken);
        var pageserver = await StubPageserver.StartAsync();
        var book = new PlacementBook(new ControllerStore(Path.Combine(_root, "state.bin")));
        book.Register("ps-1", pageserver.Address.ToString());
        var health = new NodeHealth(book, Options, _time);
        var metrics = new ControllerMetrics();
        using var heartbeats = new Heartbeats(book, health, Options, metrics, NullLogger<Heartbeats>.Instance, _time);
        await heartbeats.StartAsync(CancellationToken.None);
        try
        {
            // The first heartbeat goes out at once; the next only when the fake clock has moved on.
            await UntilAsync(() => health.Last("ps-1") is not null, pageserver.Logs);
            Assert.Equal(1, pageserver.Calls);
            Assert.Equal("a", Assert.Single(health.Last("ps-1")!.Timelines).Timeline.TimelineId);
            for (int expected = 2; expected <= 4; expected++)
                await UntilAsync(() => { _time.Advance(Options.HeartbeatInterval); return pageserver.Calls >= expected; }, pageserver.Logs);
            // Every heartbeat to a node shares the process's one channel to it: one connection, not one per call.
            Assert.Single(pageserver.Connections);

            // The process is gone: heartbeats are refused, and after the failure timeout the node is offline.
            await pageserver.DisposeAsync();
            await UntilAsync(() => { _time.Advance(Options.HeartbeatInterval); return health.IsRefusing("ps-1"); }, () => "never refused");
            var lastAnswer = health.Last("ps-1")!.At;
            Assert.Equal(_time.GetUtcNow() - lastAnswer < Options.FailureTimeout, health.IsOnline("ps-1"));
            _time.Advance(Options.FailureTimeout);
            Assert.False(health.IsOnline("ps-1"));
            Assert.Empty(health.OnlineNodes());
        }
        finally
        {
            await heartbeats.StopAsync(CancellationToken.None);
            await pageserver.DisposeAsync();
        }
    }

    /// <summary>Polls (bounded, real time) until <paramref name="done"/>.</summary>
    private static async Task UntilAsync(Func<bool> done, Func<string> describe)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (!done())
        {
            if (clock.Elapsed > Bounded) throw new TimeoutException($"not reached within {Bounded.TotalSeconds:0} s: {describe()}");
            await Task.Delay(20);
        }
    }

    /// <summary>A pageserver's ListTimelines: one attached timeline; it counts the calls and the connections they came on.</summary>
    private sealed class StubPageserver : PageserverGrpc.PageserverBase, IAsyncDisposable
    {
        private WebApplication? _app;
        private int _calls;

        public Uri Address { get; private set; } = null!;
        public int Calls => Volatile.Read(ref _calls);
        public ConcurrentDictionary<string, bool> Connections { get; } = new();

        public static async Task<StubPageserver> StartAsync()
        {
            var stub = new StubPageserver();
            var builder = ServiceHost.CreateBuilder(new ServiceEndpoints(new IPEndPoint(IPAddress.Loopback, 0), null), "text");
            builder.Services.AddSingleton(stub);
            stub._app = builder.Build();
            stub._app.MapGrpcService<StubPageserver>();
            await stub._app.StartAsync();
            stub.Address = new Uri($"http://127.0.0.1:{stub._app.Services.GetRequiredService<BoundEndpoints>().Grpc.Port}");
            return stub;
        }

        public override Task<ListTimelinesResponse> ListTimelines(ListTimelinesRequest request, ServerCallContext context)
        {
            Connections[context.GetHttpContext().Connection.Id] = true;
            Interlocked.Increment(ref _calls);
            var response = new ListTimelinesResponse();
            response.Timelines.Add(new TimelineInfo { Timeline = new TimelineRef { TenantId = "t", TimelineId = "a" }, Mode = LocationMode.Attached, Generation = 1 });
            return Task.FromResult(response);
        }

        public string Logs() => $"{Calls} calls on {Connections.Count} connections";

        public async ValueTask DisposeAsync()
        {
            if (_app is not { } app) return;
            _app = null;
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }
}
