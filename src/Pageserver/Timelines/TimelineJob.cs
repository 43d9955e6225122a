using Microsoft.Extensions.Hosting;

namespace Storage.Pageserver.Timelines;

/// <summary>
/// A timeline's background job (housekeeping, a secondary's refresh): one round per interval until
/// stopped. A failed round goes to <paramref name="failed"/> and the job goes on at the next
/// interval. Its timeline starts it and stops it (timelines come and go with the placements, so
/// the host does not know them; the host stops the timelines).
/// </summary>
internal sealed class TimelineJob(Func<CancellationToken, Task> round, Action<Exception> failed, TimeSpan interval, TimeProvider time) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken ct)
    {
        await Task.Yield(); // StartAsync returns at once; the rounds run on the thread pool
        while (!ct.IsCancellationRequested)
        {
            try { await round(ct); }
            catch (Exception) when (ct.IsCancellationRequested) { return; } // stopping: the round was cut short (a call cancelled)
            catch (Exception e) { failed(e); }
            try { await Task.Delay(interval, time, ct); } catch (OperationCanceledException) { return; }
        }
    }

    /// <summary>Stops the job; a round in progress sees the cancellation and ends first.</summary>
    public async Task StopAsync()
    {
        await StopAsync(CancellationToken.None);
        Dispose();
    }
}
