namespace Storage.Cli.Chaos;

/// <summary>What a chaos run does: its seed, how long it injects faults, how long a fault may take to heal, which kinds it draws.</summary>
public sealed record ChaosOptions(int Seed, TimeSpan Duration, TimeSpan HealTimeout, IReadOnlyList<FaultKind>? Kinds = null);

/// <summary>
/// A chaos run against a running local cluster: the workloads run through the proxy the whole time
/// while the schedule's faults are injected one step at a time (each healed, then the cluster given
/// time to be healthy again); at the end every fault is healed, the workloads stop, the final state is
/// read and the history is checked.
/// </summary>
public sealed class ChaosRunner(ClusterDirectory dir, ClusterState state, ChaosOptions options, ChaosLog log)
{
    /// <summary>How long one statement may take: a COMMIT waits out a lost quorum, so it is longer than any fault lasts.</summary>
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(15);
    /// <summary>How long the workloads may take to finish their operations in flight once told to stop.</summary>
    private static readonly TimeSpan StopTimeout = TimeSpan.FromMinutes(3);

    public async Task<ChaosReport> RunAsync(CancellationToken ct)
    {
        var endpoint = state.Endpoint ?? throw new CliError("cluster.json has no endpoint");
        var connector = new ProxyConnector(state.ConnectionString, CommandTimeout);
        var health = new ClusterHealth(state, new ProxyConnector(state.ConnectionString, ProbeTimeout, ProbeTimeout), endpoint.Id);
        var history = new History(log.Clock);
        var appendLog = new AppendLogWorkload(connector, history);
        var bank = new BankWorkload(connector, history, options.Seed);
        var register = new RegisterWorkload(connector, history, options.Seed);

        log.Write($"seed {options.Seed}, faults for {options.Duration.TotalSeconds:0} s, cluster {dir.Root}, clients through the proxy on port {state.RequiredProxy.Port}");
        var ready = await health.WaitAsync(options.HealTimeout, ct);
        if (!ready.Healthy) throw new CliError($"the cluster is not healthy, so no chaos run: {ready.LastProblem}");
        await RetryAsync("create the workloads' tables", async () =>
        {
            await appendLog.SetupAsync(ct);
            await bank.SetupAsync(ct);
            await register.SetupAsync(ct);
        }, ct);

        using var stopWorkloads = new CancellationTokenSource();
        var workloads = Task.WhenAll(appendLog.RunAsync(stopWorkloads.Token), bank.RunAsync(stopWorkloads.Token), register.RunAsync(stopWorkloads.Token));
        var faults = new List<FaultRecord>();
        var steps = new FaultStepRunner(new FaultInjector(dir, state, endpoint.Id), health, log, options.HealTimeout);
        var start = log.Clock.Now;
        foreach (var step in new FaultSchedule(options.Seed, options.Kinds).Steps())
        {
            var left = options.Duration - (log.Clock.Now - start);
            if (left <= TimeSpan.Zero || ct.IsCancellationRequested) break;
            var records = await steps.RunAsync(step, ct);
            faults.AddRange(records);
            if (records.Any(r => r.Unhealed))
            {
                log.Write("a fault did not heal: no more faults");
                break;
            }
            await register.ReadAsync(); // read-your-writes right after the failover
            await Pause.ForAsync(Min(step.QuietAfter, options.Duration - (log.Clock.Now - start)), ct);
        }

        log.Write("faults over: waiting for a healthy cluster, then stopping the workloads");
        var final = await health.WaitAsync(options.HealTimeout, CancellationToken.None);
        log.Write(final.Healthy ? $"healthy after {final.Took.TotalSeconds:0.0} s" : $"still not healthy: {final.LastProblem}");
        await stopWorkloads.CancelAsync();
        try { await workloads.WaitAsync(StopTimeout, CancellationToken.None); }
        catch (TimeoutException) { log.Write($"the workloads did not stop within {StopTimeout.TotalSeconds:0} s; judging the operations that completed"); }
        var runEnd = log.Clock.Now;
        // Before the log is read: an append still in flight that completes later is in neither, so it cannot look lost.
        var appends = history.Snapshot();

        log.Write("reading the final state");
        var ids = await RetryAsync("read the log", () => appendLog.ReadIdsAsync(CancellationToken.None), CancellationToken.None);
        await using (var session = new ClientSession(connector))
            await RetryAsync("read the bank", async () =>
            {
                if (await bank.ReadAsync(session) != OpOutcome.Ok) throw new TimeoutException("the bank read failed");
            }, CancellationToken.None);
        await register.ReadAsync();

        var ops = history.Snapshot();
        var report = ChaosReportBuilder.Build(options.Seed, options.Duration, runEnd, ops, faults,
            HistoryChecker.CheckLog(appends, ids), HistoryChecker.CheckBank(ops, BankWorkload.Accounts, BankWorkload.Total), HistoryChecker.CheckRegister(ops));
        log.Write($"done: {report.Acknowledged} writes acknowledged, {report.Lost} lost, {report.BankViolations} bank violations, {report.StaleReads} stale reads");
        return report;
    }

    /// <summary>Retries <paramref name="action"/> (the cluster may still be settling) until the heal timeout.</summary>
    private Task RetryAsync(string what, Func<Task> action, CancellationToken ct) =>
        RetryAsync(what, async () => { await action(); return true; }, ct);

    private async Task<T> RetryAsync<T>(string what, Func<Task<T>> action, CancellationToken ct)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            try { return await action(); }
            catch (Exception e) when (ProxyConnector.IsClientFailure(e) && clock.Elapsed < options.HealTimeout && !ct.IsCancellationRequested)
            {
                log.Write($"could not {what} yet ({ClientSession.Describe(e)}); retrying");
                await Task.Delay(TimeSpan.FromSeconds(1), ct);
            }
        }
    }

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;
}
