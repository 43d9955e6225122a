
namespace Storage.Cli.Chaos;

/// <summary>
/// One step of the schedule: resolves every fault's targets, injects them at once, heals each after
/// its own duration (always, also when the run is cancelled or something throws), then waits
/// (bounded) until the cluster is healthy again. Prints each event as it happens.
/// </summary>
public sealed class FaultStepRunner(FaultInjector injector, ClusterHealth health, ChaosLog log, TimeSpan healTimeout)
{
    public async Task<IReadOnlyList<FaultRecord>> RunAsync(FaultStep step, CancellationToken ct)
    {
        log.Write(step.ToString());
        var records = step.Faults.Select(spec => new FaultRecord(step.Number, spec)).ToList();
        var targets = new List<(FaultRecord Record, FaultTargets Targets)>();
        foreach (var record in records)
        {
            try { targets.Add((record, await injector.ResolveAsync(record.Spec))); }
            catch (Exception e) when (IsClusterFailure(e))
            {
                record.Problem = $"not injected: {e.Message}";
                log.Write($"  {record.Spec.Kind.Name}: {record.Problem}");
            }
        }

        // Each injected after its delay, healed after its own duration.
        var active = new List<(FaultRecord Record, ActiveFault Fault)>();
        try
        {
            await Task.WhenAll(targets.Select(async t =>
            {
                var (record, target) = t;
                await Pause.ForAsync(record.Spec.Delay, ct);
                record.Targets = target.ToString();
                record.InjectedAt = log.Clock.Now;
                ActiveFault fault;
                try { fault = await injector.InjectAsync(record.Spec, target); }
                catch (Exception e) when (IsClusterFailure(e))
                {
                    record.InjectedAt = null;
                    record.Problem = $"not injected: {e.Message}";
                    log.Write($"  {record.Spec.Kind.Name}: {record.Problem}");
                    return;
                }
                lock (active) active.Add((record, fault));
                log.Write($"  {record.Spec.Kind.Name}: {(record.Spec.Kind.Action == FaultAction.Kill ? "SIGKILL" : "SIGSTOP")} {target}");
                await Pause.ForAsync(record.Spec.Hold, ct);
                await HealAsync(record, fault);
            }));
        }
        finally
        {
            foreach (var (record, fault) in active.Where(a => !a.Fault.Healed)) await HealAsync(record, fault);
        }
        if (active.Count == 0) return records;

        var wait = await health.WaitAsync(healTimeout, ct);
        foreach (var (record, _) in active)
        {
            if (wait.Healthy) record.HealthyAt = log.Clock.Now;
            else if (ct.IsCancellationRequested) record.Problem = $"the run was cancelled before the cluster was healthy again: {wait.LastProblem}";
            else record.Problem = $"not healthy {healTimeout.TotalSeconds:0} s after healing: {wait.LastProblem}";
        }
        log.Write(wait.Healthy ? $"  healthy again after {wait.Took.TotalSeconds:0.0} s" : $"  NOT HEALTHY after {wait.Took.TotalSeconds:0} s: {wait.LastProblem}");
        return records;
    }

    private async Task HealAsync(FaultRecord record, ActiveFault fault)
    {
        record.HealedAt = log.Clock.Now;
        try { log.Write($"  {record.Spec.Kind.Name}: {await injector.HealAsync(fault)}"); }
        catch (Exception e) when (IsClusterFailure(e)) { log.Write($"  {record.Spec.Kind.Name}: heal failed: {e.Message}"); }
    }

    /// <summary>Failures of asking or starting a component (as opposed to a bug here).</summary>
    private static bool IsClusterFailure(Exception e) =>
        e is CliError or Grpc.Core.RpcException or IOException or HttpRequestException or TimeoutException or InvalidOperationException;
}
