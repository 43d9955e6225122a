using System.Diagnostics;
using Storage.Core.Grpc;
using Storage.Proto.Test;
using Xunit.Abstractions;

namespace Storage.Core.Tests.Grpc;

/// <summary>
/// Reports duplex ping-pong round-trip latency on loopback. Informational only: timing depends
/// on the machine, so nothing here asserts on it (see the test output for the numbers).
/// Runs alone (non-parallel collection) so other tests do not distort the numbers.
/// </summary>
[Collection(nameof(LatencyReportTests))]
public class LatencyReportTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Duplex_ping_pong_round_trip_latency_is_reported()
    {
        await using var t = await GrpcTestServer.StartAsync();
        using var call = t.Channel.Duplex(EchoMethods.Chat, new CallOptions(Timeout: TimeSpan.FromSeconds(60)));
        var request = new EchoRequest { Text = "ping", Payload = Google.Protobuf.ByteString.CopyFrom(new byte[128]) };
        for (int i = 0; i < 2000; i++) // warm-up: JIT, tiering, connection windows
            await PingAsync(call, request);

        const int samples = 5000;
        var micros = new double[samples];
        for (int i = 0; i < samples; i++)
        {
            long start = Stopwatch.GetTimestamp();
            await PingAsync(call, request);
            micros[i] = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
        }
        await call.RequestStream.CompleteAsync();
        Assert.Null(await call.ResponseStream.ReadAsync());

        string slowest = string.Join(", ", micros.Select((us, i) => (us, i)).OrderByDescending(x => x.us).Take(5).Select(x => $"#{x.i}={x.us:F0}"));
        output.WriteLine($"slowest samples: {slowest}");
        Console.WriteLine($"slowest samples: {slowest}");
        Array.Sort(micros);
        string report = $"duplex ping-pong RTT over {samples} samples: median {micros[samples / 2]:F0} µs, " +
            $"p90 {micros[samples * 90 / 100]:F0} µs, p99 {micros[samples * 99 / 100]:F0} µs, max {micros[^1]:F0} µs";
        output.WriteLine(report);
        Console.WriteLine(report);
    }

    private static async Task PingAsync(DuplexCall<EchoRequest, EchoReply> call, EchoRequest request)
    {
        await call.RequestStream.WriteAsync(request);
        Assert.NotNull(await call.ResponseStream.ReadAsync());
    }
}

[CollectionDefinition(nameof(LatencyReportTests), DisableParallelization = true)]
public class LatencyReportCollection
{
}
