namespace Storage.Cli.Chaos;

/// <summary>Waits that end early, without throwing, when the run stops.</summary>
public static class Pause
{
    /// <summary>Waits <paramref name="time"/> or until <paramref name="stop"/>; returns false if stopped.</summary>
    public static async Task<bool> ForAsync(TimeSpan time, CancellationToken stop)
    {
        if (time <= TimeSpan.Zero) return !stop.IsCancellationRequested;
        try { await Task.Delay(time, stop); return true; }
        catch (OperationCanceledException) { return false; }
    }

    /// <summary>A workload's pause between operations: longer after a failure, so a down cluster is not hammered.</summary>
    public static Task<bool> AfterAsync(OpOutcome outcome, TimeSpan pace, CancellationToken stop) =>
        ForAsync(outcome == OpOutcome.Ok ? pace : pace + TimeSpan.FromMilliseconds(200), stop);
}
