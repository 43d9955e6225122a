using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Storage.Safekeeper;

/// <summary>
/// A background job that visits every timeline once per interval (offload, trim). A failure on one
/// timeline is logged and retried next round; it does not stop the others.
/// </summary>
internal abstract class TimelineRounds(TimelineRegistry registry, ILogger logger, TimeSpan interval, string jobName, TimeProvider time) : BackgroundService
{
    protected ILogger Log { get; } = logger;
    protected TimeProvider Time { get; } = time;

    /// <summary>One round's work on one timeline.</summary>
    protected abstract Task RunAsync(Timeline timeline, CancellationToken ct);

    protected override async Task ExecuteAsync(CancellationToken ct)
    {
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
            try { await Task.Delay(interval, Time, ct); } catch (OperationCanceledException) { return; }
        }
    }
}
