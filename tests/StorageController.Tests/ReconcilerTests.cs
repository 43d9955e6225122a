using Microsoft.Extensions.Logging.Abstractions;
using Storage.Core.Observability;
using Storage.Core.Processes;

namespace Storage.StorageController.Tests;

/// <summary>The reconciler over a real placement book, with pageservers that never answer (port 1 refuses).</summary>
public sealed class ReconcilerTests : IDisposable
{
    private const string Tenant = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    private const string Timeline = "00000000000000000000000000000001";
    private readonly string _root = Directory.CreateTempSubdirectory("sc-reconciler-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public async Task A_timeline_still_being_created_is_not_failed_over_and_is_once_created()
    {
        var options = new ControllerOptions
        {
            DataDirectory = _root, FailureTimeout = TimeSpan.FromSeconds(2), UnresponsiveTimeout = TimeSpan.FromSeconds(2),
            AttachTimeout = TimeSpan.FromSeconds(2),
        };
        var book = new PlacementBook(new ControllerStore(Path.Combine(_root, "state.bin")));
        book.Register("ps-1", "http://127.0.0.1:1");
        book.Register("ps-2", "http://127.0.0.1:1");
        var metrics = new ControllerMetrics(new MetricsRegistry());
        await using var health = new NodeHealth(book, options, metrics, NullLogger.Instance);
        await using var reconciler = new Reconciler(book, health, options, metrics, NullLogger.Instance);
        var placement = book.Place(Tenant, Timeline, ["ps-1", "ps-2"], ancestor: null);
        Assert.Equal(("ps-1", "ps-2"), (placement.Attached, placement.Secondary));

        // ps-1 has not answered since the controller started; ps-2 just registered (it is online).
        await Task.Delay(options.UnresponsiveTimeout + TimeSpan.FromMilliseconds(200));
        health.Registered("ps-2");
        Assert.False(health.IsOnline("ps-1"));

        await reconciler.ReconcileOnceAsync(CancellationToken.None);
        Assert.Equal(placement, book.Get(Tenant, Timeline)); // its creation is under way: nothing to fail over

        book.Created(placement);
        health.Registered("ps-2");
        await reconciler.ReconcileOnceAsync(CancellationToken.None);
        var promoted = book.Get(Tenant, Timeline);
        Assert.Equal(("ps-2", "ps-1", 2UL), (promoted.Attached, promoted.Secondary, promoted.Generation));
    }
}

/// <summary>The controller process refuses options that contradict each other.</summary>
public sealed class ControllerOptionsTests
{
    [Fact]
    public async Task An_unresponsive_timeout_below_the_failure_timeout_is_refused_at_start()
    {
        var root = Directory.CreateTempSubdirectory("sc-options-").FullName;
        try
        {
            var arguments = ControllerCommand.Arguments(ServiceProcess.FreePort(), null, Path.Combine(root, "data"),
                failureTimeout: TimeSpan.FromSeconds(2)).Concat(["--unresponsive-timeout-ms", "1000"]);
            var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => ServiceProcess.StartAsync(
                ControllerCommand.Assembly, arguments, Path.Combine(root, "controller.log"), readyTimeout: TimeSpan.FromSeconds(60)));
            Assert.Contains("--unresponsive-timeout-ms must be at least --failure-timeout-ms", refused.Message);
        }
        finally { Directory.Delete(root, recursive: true); }
    }
}
