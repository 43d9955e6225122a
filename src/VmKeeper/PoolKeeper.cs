using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Storage.VmKeeper;

/// <summary>
/// Keeps the compose project's VM pool whole: every interval it lists the pool's containers and
/// starts again each one that was SIGKILLed (<see cref="KilledVm"/>). The control plane has moved
/// the endpoint off such a VM already; started again, the VM's agent comes up idle and the control
/// plane takes it back into the pool.
/// </summary>
public sealed class PoolKeeper(DockerEngine docker, IReadOnlyList<string> poolLabels, TimeSpan interval, VmKeeperMetrics metrics,
    ILogger<PoolKeeper> log, TimeProvider time) : BackgroundService
{
    private static readonly string[] States = ["running", "restarting", "exited", "created", "paused", "dead"];
    private bool _failing;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(interval, time);
        try
        {
            do await CheckAsync(stoppingToken);
            while (await timer.WaitForNextTickAsync(stoppingToken));
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested) { }
    }

    /// <summary>One pass over the pool; a failure is logged once until a pass succeeds again.</summary>
    public async Task CheckAsync(CancellationToken cancellation)
    {
        try
        {
            var members = await docker.ListAsync(poolLabels, cancellation);
            foreach (var state in States) metrics.Members.WithLabels(state).Set(members.Count(m => m.State == state));
            foreach (var member in members.Where(m => m.State == "exited"))
                await StartIfKilledAsync(member, cancellation);
            if (_failing) log.LogInformation("the Docker Engine answers again");
            _failing = false;
        }
        // Unreachable or refusing, timed out, or an answer not shaped as the API documents (JSON, KeyNotFound, InvalidOperation).
        catch (Exception e) when (e is DockerEngineException or HttpRequestException or TaskCanceledException or System.Text.Json.JsonException
                                      or KeyNotFoundException or InvalidOperationException && !cancellation.IsCancellationRequested)
        {
            metrics.CheckFailures.Inc();
            if (!_failing) log.LogWarning("cannot check the VM pool: {Reason}", e.Message);
            _failing = true;
        }
    }

    private async Task StartIfKilledAsync(ContainerSummary member, CancellationToken cancellation)
    {
        var state = await docker.InspectAsync(member.Id, cancellation);
        if (!KilledVm.ShouldStartAgain(state)) return;
        var vm = member.Labels.GetValueOrDefault("com.docker.compose.service", state.Name);
        if (!await docker.StartAsync(member.Id, cancellation)) return;
        metrics.Starts.WithLabels(vm).Inc();
        log.LogWarning("VM container {Vm} ({Container}) was killed (exit code {ExitCode}): started again, it rejoins the pool idle",
            vm, state.Name, state.ExitCode);
    }
}
