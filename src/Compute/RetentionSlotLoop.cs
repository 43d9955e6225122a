using Microsoft.Extensions.Hosting;

namespace Storage.Compute;

/// <summary>Every second, moves the attached PostgreSQL's retention slot up (<see cref="ComputeAgent.AdvanceRetentionSlotAsync"/>).</summary>
internal sealed class RetentionSlotLoop(ComputeAgent agent, TimeProvider time) : BackgroundService
{
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Interval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken)) await agent.AdvanceRetentionSlotAsync();
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested) { }
    }
}
