using Storage.Core.Grpc;

namespace Storage.StorageController.Tests;

/// <summary>When a silent pageserver counts as offline (<see cref="Liveness"/>): soon when it refuses, later when it only times out.</summary>
public sealed class LivenessTests
{
    private static readonly ControllerOptions Options = new()
    {
        DataDirectory = "unused", FailureTimeout = TimeSpan.FromSeconds(2), UnresponsiveTimeout = TimeSpan.FromSeconds(10),
    };
    private static readonly DateTime Answered = new(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc);

    [Theory]
    [InlineData(1.9, true, true)]
    [InlineData(2.0, true, false)]   // refused for the failure timeout: the process is gone
    [InlineData(2.0, false, true)]   // timed out as long: maybe only slow
    [InlineData(9.9, false, true)]
    [InlineData(10.0, false, false)] // silent for the unresponsive timeout: offline too
    public void A_refusing_node_is_offline_after_the_failure_timeout_a_silent_one_after_the_unresponsive_timeout(double secondsSinceAnswer, bool refusing, bool online) =>
        Assert.Equal(online, Liveness.IsOnline(Answered, refusing, Answered.AddSeconds(secondsSinceAnswer), Options));

    [Fact]
    public void Only_an_unavailable_call_is_a_refusal()
    {
        Assert.True(RpcException.IsRefusal(new RpcException(GrpcStatusCode.Unavailable, "connection refused")));
        Assert.False(RpcException.IsRefusal(new RpcException(GrpcStatusCode.DeadlineExceeded, "no status within 00:00:05")));
        Assert.False(RpcException.IsRefusal(new RpcException(GrpcStatusCode.Internal, "bug")));
        Assert.False(RpcException.IsRefusal(new TimeoutException()));
    }
}
