using Microsoft.Extensions.Logging;

namespace Storage.Safekeeper;

/// <summary>
/// A background job that visits every timeline once per interval (offload, trim). A failure on one
/// timeline is logged and retried next round; it does not stop the others.
/// </summary>
internal abstract class TimelineRounds(TimelineRegistry registry, ILogger logger, TimeSpan interval, string jobName) : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private Task _loop = Task.CompletedTask;

    protected ILogger Log { get; } = logger;

    public void Start() => _loop = Task.Run(LoopAsync);

    /// <summary>One round's work on one timeline.</summary>
    protected abstract Task RunAsync(Timeline timeline, CancellationToken ct);

    private async Task LoopAsync()
    {
        var ct = _stop.Token;
        while (!ct.IsCancellationRequested)
        {
            foreach (var timeline in registry.All.ToList())
            {
                try { await RunAsync(timeline, ct); }
                catch (OperationCanceledException) when (ct.IsCancellationRequested) { return; }
                catch (Exception e)
                {
                    Log.LogWarning("{Job} of {TenantId}/{TimelineId} failed, will retry: {Error}", jobName, timeline.Identity.TenantId, timeline.Identity.TimelineId, e.Message);
                }
            }
            try { await Task.Delay(interval, ct); } catch (OperationCanceledException) { return; }
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        try { await _loop; } catch (Exception) { }
    }
}
