using Microsoft.Extensions.Logging;
using Storage.Core.Errors;
using Storage.Core.Postgres;
using Storage.Proposer;
using Storage.Proto.Compute;

namespace Storage.Compute;

/// <summary>PostgreSQL crashing, the walproposer stopping, fencing: noticed at once, restarted from a fresh basebackup.</summary>
internal sealed partial class ComputeAgent
{
    private void OnPostgresExited(PostgresServer postgres, int exitCode)
    {
        AttachRequest? request;
        lock (_lock)
        {
            if (_postgres != postgres) return;
            var reason = $"postgres (pid {postgres.ProcessId}) exited unexpectedly: {DescribeExit(exitCode)}";
            if (_state == ComputeState.Failed)
            {
                // Its broken replication stream was noticed first and the restart is under way: the
                // exit is still the better reason to report.
                _reason = _lastCrash = reason;
                return;
            }
            if (_state is not (ComputeState.Running or ComputeState.Attaching)) return;
            _state = ComputeState.Failed;
            _reason = _lastCrash = reason;
            request = _request;
        }
        _metrics.PostgresExited();
        _log.LogCritical("endpoint {EndpointId}: {Reason}; restarting it from a fresh basebackup", request?.Endpoint?.EndpointId, _lastCrash);
        if (request != null) _ = RestartAfterCrashAsync(request);
    }

    /// <summary>
    /// PostgreSQL died. Its data directory is only a cache: re-sync the safekeepers and start again
    /// from a fresh basebackup on this VM, backing off if it keeps failing, until it runs or the
    /// endpoint is detached or attached elsewhere.
    /// </summary>
    private async Task RestartAfterCrashAsync(AttachRequest request)
    {
        for (int attempt = 0; ; attempt++)
        {
            ulong restarts;
            lock (_lock) restarts = _restarts;
            // At once the first time; a PostgreSQL that keeps dying waits longer each round (max 30 s).
            var delay = TimeSpan.FromMilliseconds(Math.Min(30_000, 250.0 * ((1 << (int)Math.Min(restarts + (ulong)attempt, 7)) - 1)));
            await Task.Delay(delay, _time);
            await _operation.WaitAsync();
            try
            {
                lock (_lock)
                {
                    if (_request != request || _state != ComputeState.Failed) return; // detached, re-attached or fenced meanwhile
                    _restarts++;
                }
                _metrics.Restarted();
                var (tenant, timeline, safekeepers, _) = Validate(request);
                _log.LogWarning("restarting postgres of endpoint {EndpointId} (restart {Restart})", request.Endpoint.EndpointId, _restarts);
                await AttachHoldingOperationAsync(request, tenant, timeline, safekeepers, CancellationToken.None);
                return;
            }
            catch (ServiceException e)
            {
                _log.LogError("restart of endpoint {EndpointId} failed, will retry: {Reason}", request.Endpoint.EndpointId, e.Message);
            }
            finally { _operation.Release(); }
        }
    }

    private void OnFenced(WalProposer proposer, string reason)
    {
        PostgresServer? postgres;
        lock (_lock)
        {
            if (_proposer != proposer || _state is not (ComputeState.Running or ComputeState.Attaching)) return;
            _state = ComputeState.Fenced;
            _reason = $"another compute took timeline {_request?.TenantId}/{_request?.TimelineId}: {reason}";
            postgres = _postgres;
        }
        _log.LogWarning("endpoint {EndpointId} fenced, stopping postgres: {Reason}", _request?.Endpoint?.EndpointId, _reason);
        // Nothing this PostgreSQL writes can commit any more: stop it at once.
        _ = postgres?.StopAsync(ShutdownMode.Immediate, TimeSpan.FromSeconds(10));
    }

    private async Task OnStreamerStopped(WalStreamer streamer, Task completion)
    {
        if (!completion.IsFaulted) return;
        // A dying PostgreSQL breaks the replication stream first: give its exit the chance to be the reason.
        if (_postgres is { } running) await Task.WhenAny(running.Exited, Task.Delay(500));
        AttachRequest? request;
        lock (_lock)
        {
            if (_streamer != streamer || _state != ComputeState.Running || _postgres is not { HasExited: false }) return;
            _state = ComputeState.Failed;
            _reason = _lastCrash = "walproposer stopped: " + completion.Exception?.GetBaseException().Message;
            request = _request;
        }
        // PostgreSQL can no longer commit without it: start over, as after a crash.
        _log.LogError("endpoint {EndpointId}: {Reason}; restarting postgres from a fresh basebackup", request?.Endpoint?.EndpointId, _lastCrash);
        if (request != null) _ = RestartAfterCrashAsync(request);
    }

    private static string DescribeExit(int code) =>
        code > 128 ? $"killed by signal {code - 128}{(code - 128 == 9 ? " (SIGKILL)" : "")}" : $"exit code {code}";
}
