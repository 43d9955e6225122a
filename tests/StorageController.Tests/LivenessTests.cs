using Microsoft.Extensions.Time.Testing;
using Storage.Core.Processes;
using Storage.Proto.Pageserver;

namespace Storage.StorageController.Tests;

/// <summary>When a silent pageserver counts as offline (<see cref="Liveness"/>): soon when it refuses, later when it only times out.</summary>
public sealed class LivenessTests
{
    private static readonly ControllerOptions Options = new() { FailureTimeoutMs = 2000, UnresponsiveTimeoutMs = 10_000 };
    private static readonly DateTimeOffset Answered = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    [Theory]
    [InlineData(1.9, true, true)]
    [InlineData(2.0, true, false)]   // refused for the failure timeout: the process is gone
    [InlineData(2.0, false, true)]   // timed out as long: maybe only slow
    [InlineData(9.9, false, true)]
    [InlineData(10.0, false, false)] // silent for the unresponsive timeout: offline too
    public void A_refusing_node_is_offline_after_the_failure_timeout_a_silent_one_after_the_unresponsive_timeout(double secondsSinceAnswer, bool refusing, bool online) =>
        Assert.Equal(online, Liveness.IsOnline(Answered, refusing, Answered.AddSeconds(secondsSinceAnswer), Options));
}

/// <summary><see cref="NodeHealth"/> on a fake clock: what it heard, and the timeouts since.</summary>
public sealed class NodeHealthTests : IDisposable
{
    private static readonly ControllerOptions Options = new() { FailureTimeoutMs = 2000, UnresponsiveTimeoutMs = 10_000 };
    private readonly string _root = Directory.CreateTempSubdirectory("sc-health-").FullName;
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
    private readonly PlacementBook _book;
    private readonly NodeHealth _health;

    public NodeHealthTests()
    {
        _book = new PlacementBook(new ControllerStore(Path.Combine(_root, "state.bin")));
        _book.Register("ps-1", "http://127.0.0.1:1");
        _book.Register("ps-2", "http://127.0.0.1:1");
        _health = new NodeHealth(_book, Options, _time);
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private void Advance(double seconds) => _time.Advance(TimeSpan.FromSeconds(seconds));

    [Fact]
    public void A_registered_node_whose_heartbeats_are_refused_is_offline_after_the_failure_timeout()
    {
        _health.Registered("ps-1");
        _health.Failed("ps-1", refused: true);
        Advance(1.999);
        Assert.True(_health.IsOnline("ps-1"));
        Advance(0.001);
        Assert.False(_health.IsOnline("ps-1"));
        Assert.DoesNotContain("ps-1", _health.OnlineNodes());
    }

    [Fact]
    public void A_node_whose_heartbeats_time_out_stays_online_until_the_unresponsive_timeout()
    {
        _health.Registered("ps-1");
        _health.Failed("ps-1", refused: false);
        Advance(9.999);
        Assert.True(_health.IsOnline("ps-1"));
        Advance(0.001);
        Assert.False(_health.IsOnline("ps-1"));
    }

    [Fact]
    public void A_refusal_after_a_long_silence_makes_the_node_offline_at_once()
    {
        _health.Answered("ps-1", []);
        _health.Failed("ps-1", refused: false);
        Advance(5);
        Assert.True(_health.IsOnline("ps-1")); // only slow so far
        _health.Failed("ps-1", refused: true);
        Assert.False(_health.IsOnline("ps-1")); // nothing listens any more, and it has not answered for 5 s
    }

    [Fact]
    public void A_node_not_heard_since_the_controller_started_gets_one_unresponsive_timeout_to_answer()
    {
        Advance(9.9);
        Assert.Equal(["ps-1", "ps-2"], _health.OnlineNodes());
        _health.Answered("ps-2", []);
        Advance(0.1);
        Assert.Equal(["ps-2"], _health.OnlineNodes());
    }

    [Fact]
    public void An_answer_brings_an_offline_node_back_with_what_it_holds()
    {
        _health.Registered("ps-1");
        _health.Failed("ps-1", refused: true);
        Advance(3);
        Assert.False(_health.IsOnline("ps-1"));

        var timeline = new TimelineInfo { Timeline = new TimelineRef { TenantId = "t", TimelineId = "a" }, Mode = LocationMode.Secondary };
        _health.Answered("ps-1", [timeline]);
        Assert.True(_health.IsOnline("ps-1"));
        Assert.Equal(_time.GetUtcNow(), _health.Last("ps-1")!.At);
        Assert.Equal([timeline], _health.Last("ps-1")!.Timelines);

        // A call about another timeline counts as an answer too, and keeps what the heartbeat said.
        Advance(1.5);
        var other = new TimelineInfo { Timeline = new TimelineRef { TenantId = "t", TimelineId = "b" }, Mode = LocationMode.Attached };
        _health.Observed("ps-1", other);
        Assert.Equal([timeline, other], _health.Last("ps-1")!.Timelines);
        Assert.Equal(_time.GetUtcNow(), _health.Last("ps-1")!.At);
    }
}
