using System.Collections.Concurrent;
using System.Net;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Storage.Core;
using Storage.Core.Hosting;
using Storage.Pageserver.Wal;
using Storage.Proto.Safekeeper;
using SafekeeperGrpc = Storage.Proto.Safekeeper.Safekeeper;

namespace Storage.Pageserver.Tests;

/// <summary>
/// <see cref="WalReceiver"/> against in-process safekeeper stand-ins (hosted as every service is),
/// on a fake clock: the stall timeout that makes it switch source is the fake clock's.
/// </summary>
public sealed class WalReceiverTests
{
    private static readonly Lsn Start = new(0x0100_0000);
    private static readonly TimeSpan StallTimeout = TimeSpan.FromMinutes(10); // far beyond the test's real-time bound
    private static readonly TimeSpan Bounded = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task A_source_that_stalls_for_the_stall_timeout_while_another_has_newer_wal_is_left_for_that_one()
    {
        await using var a = await StubSafekeeper.StartAsync(commit: Start + 200, sendUpTo: Start + 100); // sends part of its WAL, then goes silent
        await using var b = await StubSafekeeper.StartAsync(commit: Start, sendUpTo: Start);              // nothing newer yet
        var time = new FakeTimeProvider();
        var sink = new RecordingSink(Start);
        using var receiver = new WalReceiver("tenant", "timeline", [a.Address, b.Address], sink, NullLogger.Instance, time, StallTimeout);
        await receiver.StartAsync(CancellationToken.None);
        try
        {
            // The clock moves in steps far below the stall timeout: a status probe that missed its (real)
            // deadline on a loaded machine is retried after a backoff on this clock.
            await UntilAsync(() => { time.Advance(TimeSpan.FromMilliseconds(100)); return sink.NextByte == Start + 100; }, sink.Describe);
            Assert.Equal([a.Address.ToString()], sink.Sources);

            // b now holds newer WAL; a stays silent. Only the fake clock's stall timeout makes the receiver switch.
            b.Serve(commit: Start + 300, sendUpTo: Start + 300);
            await UntilAsync(() => { time.Advance(StallTimeout); return sink.NextByte == Start + 300; }, sink.Describe);
            Assert.Equal([a.Address.ToString(), b.Address.ToString()], sink.Sources.Distinct());
            // It went on where a left off (the loop above keeps advancing the clock, so b may be re-read later too).
            Assert.Equal(Start + 100, b.ReadFrom.First());
            await a.StreamCancelled.Task.WaitAsync(Bounded); // and a's stream was ended, not left open
        }
        finally { await receiver.StopAsync(); }
    }

    private static async Task UntilAsync(Func<bool> done, Func<string> describe)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (!done())
        {
            if (clock.Elapsed > Bounded) throw new TimeoutException($"not reached within {Bounded.TotalSeconds:0} s: {describe()}");
            await Task.Delay(20);
        }
    }

    /// <summary>Takes whatever WAL comes (no decoding) and remembers where from.</summary>
    private sealed class RecordingSink(Lsn start) : IWalSink
    {
        private readonly object _lock = new();
        private Lsn _next = start;

        public List<string> Sources { get { lock (_lock) return [.. _sources]; } }
        private readonly List<string> _sources = [];

        public Lsn NextByte { get { lock (_lock) return _next; } }
        public Lsn IngestedLsn => NextByte;

        public void Receive(Lsn from, ReadOnlySpan<byte> bytes, Lsn commitLsn, string source)
        {
            lock (_lock)
            {
                Assert.Equal(_next, from);
                _next += (ulong)bytes.Length;
                _sources.Add(source);
            }
        }

        public string Describe() => $"received up to {NextByte} from {string.Join(", ", Sources)}";
    }

    /// <summary>A safekeeper's status and WAL reads: WAL up to <c>sendUpTo</c> is sent, then the stream stays open and silent.</summary>
    private sealed class StubSafekeeper : SafekeeperGrpc.SafekeeperBase, IAsyncDisposable
    {
        private WebApplication? _app;
        private volatile Serving _serving = new(Lsn.Zero, Lsn.Zero);

        public Uri Address { get; private set; } = null!;
        public ConcurrentQueue<Lsn> ReadFrom { get; } = new();
        public TaskCompletionSource StreamCancelled { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public static async Task<StubSafekeeper> StartAsync(Lsn commit, Lsn sendUpTo)
        {
            var stub = new StubSafekeeper();
            stub.Serve(commit, sendUpTo);
            var builder = ServiceHost.CreateBuilder(new ServiceEndpoints(new IPEndPoint(IPAddress.Loopback, 0), null), "text");
            builder.Services.AddSingleton(stub);
            stub._app = builder.Build();
            stub._app.MapGrpcService<StubSafekeeper>();
            await stub._app.StartAsync();
            stub.Address = new Uri($"http://127.0.0.1:{stub._app.Services.GetRequiredService<BoundEndpoints>().Grpc.Port}");
            return stub;
        }

        public void Serve(Lsn commit, Lsn sendUpTo) => _serving = new Serving(commit, sendUpTo);

        public override Task<TimelineStatus> GetTimelineStatus(TimelineStatusRequest request, ServerCallContext context) =>
            Task.FromResult(new TimelineStatus { Timeline = request.Timeline, CommitLsn = _serving.Commit.Value });

        public override async Task ReadWal(ReadWalRequest request, IServerStreamWriter<WalChunk> responseStream, ServerCallContext context)
        {
            var (commit, sendUpTo) = _serving;
            var from = new Lsn(request.StartLsn);
            ReadFrom.Enqueue(from);
            if (sendUpTo > from)
                await responseStream.WriteAsync(new WalChunk { StartLsn = from.Value, Data = ByteString.CopyFrom(new byte[sendUpTo - from]), CommitLsn = commit.Value });
            try { await Task.Delay(Timeout.Infinite, context.CancellationToken); }
            catch (OperationCanceledException) { StreamCancelled.TrySetResult(); }
        }

        private sealed record Serving(Lsn Commit, Lsn SendUpTo);

        public async ValueTask DisposeAsync()
        {
            if (_app is not { } app) return;
            _app = null;
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }
}
