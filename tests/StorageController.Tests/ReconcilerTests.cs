using Storage.Testing;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Storage.Core.Hosting;
using Storage.Core.Processes;

namespace Storage.StorageController.Tests;

/// <summary>The reconciler over a real placement book on a fake clock, with pageservers that never answer (port 1 refuses).</summary>
public sealed class ReconcilerTests : IDisposable
{
    private const string Tenant = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    private const string Timeline = "00000000000000000000000000000001";
    private readonly string _root = Directory.CreateTempSubdirectory("sc-reconciler-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public async Task A_timeline_still_being_created_is_not_failed_over_and_is_once_created()
    {
        var options = new ControllerOptions { DataDir = _root, FailureTimeoutMs = 2000, UnresponsiveTimeoutMs = 2000, AttachTimeout = TimeSpan.FromSeconds(2) };
        var time = new FakeTimeProvider();
        var book = new PlacementBook(new ControllerStore(Path.Combine(_root, "state.bin")));
        book.Register("ps-1", "http://127.0.0.1:1");
        book.Register("ps-2", "http://127.0.0.1:1");
        var metrics = new ControllerMetrics();
        var health = new NodeHealth(book, options, time);
        using var reconciler = new Reconciler(book, health, options, metrics, NullLogger<Reconciler>.Instance, time);
        var placement = book.Place(Tenant, Timeline, ["ps-1", "ps-2"], ancestor: null);
        Assert.Equal(("ps-1", "ps-2"), (placement.Attached, placement.Secondary));

        // ps-1 has not answered since the controller started; ps-2 just registered (it is online).
        time.Advance(options.UnresponsiveTimeout);
        health.Registered("ps-2");
        Assert.False(health.IsOnline("ps-1"));

        await reconciler.ReconcileOnceAsync(CancellationToken.None);
        Assert.Equal(placement, book.Get(Tenant, Timeline)); // its creation is under way: nothing to fail over

        book.Created(placement);
        await reconciler.ReconcileOnceAsync(CancellationToken.None);
        var promoted = book.Get(Tenant, Timeline);
        Assert.Equal(("ps-2", "ps-1", 2UL), (promoted.Attached, promoted.Secondary, promoted.Generation));
        Assert.Equal(1UL, book.Failovers);
    }

    [Fact]
    public async Task An_attached_node_that_does_not_report_the_timeline_is_told_to_attach_it_once_it_answers_heartbeats()
    {
        var options = new ControllerOptions { DataDir = _root, AttachTimeout = TimeSpan.FromSeconds(2) };
        var time = new FakeTimeProvider();
        var book = new PlacementBook(new ControllerStore(Path.Combine(_root, "state.bin")));
        book.Register("ps-1", "http://127.0.0.1:1");
        book.Register("ps-2", "http://127.0.0.1:1");
        var health = new NodeHealth(book, options, time);
        var log = new FakeLogger<Reconciler>();
        using var reconciler = new Reconciler(book, health, options, new ControllerMetrics(), log, time);
        book.Created(book.Place(Tenant, Timeline, ["ps-1", "ps-2"], ancestor: null));
        bool AttachTried() => log.Collector.GetSnapshot().Any(r => r.Message.Contains("Attached on ps-1", StringComparison.Ordinal));

        // No heartbeat answered yet: nothing is known of what ps-1 holds, so nothing is sent.
        await reconciler.ReconcileOnceAsync(CancellationToken.None);
        Assert.False(AttachTried());

        // ps-1 answers but lists no such timeline (a failover's attach call failed before it had it).
        health.Answered("ps-1", []);
        await reconciler.ReconcileOnceAsync(CancellationToken.None);
        Assert.True(AttachTried(), string.Join('\n', log.Collector.GetSnapshot().Select(r => r.Message)));
    }
}

/// <summary>The controller refuses options that contradict each other.</summary>
public sealed class ControllerOptionsTests
{
    private static readonly ControllerOptions Contradictory = new() { FailureTimeoutMs = 2000, UnresponsiveTimeoutMs = 1000, Auth = TestAuth.Secrets.VerifierAuth() };

    [Fact]
    public void An_unresponsive_timeout_below_the_failure_timeout_does_not_parse()
    {
        var errors = new StringWriter();
        var parsed = ServiceOptions.Parse<ControllerOptions>(ControllerCommand.Arguments(Contradictory), "test", new StringWriter(), errors);
        Assert.Equal((null, 2), (parsed.Options, parsed.ExitCode));
        Assert.Contains(ControllerOptions.UnresponsiveBelowFailure, errors.ToString());
    }

    [Fact]
    public async Task An_unresponsive_timeout_below_the_failure_timeout_is_refused_at_start()
    {
        var root = Directory.CreateTempSubdirectory("sc-options-").FullName;
        try
        {
            var arguments = ControllerCommand.Arguments(Contradictory with
            {
                Service = ServiceListenOptions.OnLoopback(ServiceProcess.FreePort(), null), DataDir = Path.Combine(root, "data"),
            });
            var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => ServiceProcess.StartAsync(
                ControllerCommand.Assembly, arguments, Path.Combine(root, "controller.log"), readyTimeout: TimeSpan.FromSeconds(60)));
            Assert.Contains(ControllerOptions.UnresponsiveBelowFailure, refused.Message);
            Assert.False(Directory.Exists(Path.Combine(root, "data")), "the refused controller touched its state directory");
        }
        finally { Directory.Delete(root, recursive: true); }
    }
}
