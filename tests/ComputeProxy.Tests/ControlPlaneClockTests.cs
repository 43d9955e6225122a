using Grpc.Core;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Storage.ComputeProxy.ControlPlane;
using Storage.Core.Api;
using Storage.Proto.Compute;
using Storage.Testing;

namespace Storage.ComputeProxy.Tests;

/// <summary>
/// The control plane's timeouts on a fake clock: when failed heartbeats make a VM dead, and when an
/// idle endpoint is suspended. No VM runs: the heartbeats are a probe the test answers.
/// </summary>
public sealed class ControlPlaneClockTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("control-plane-clock-").FullName;
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
    private readonly ControlPlaneOptions _options;
    private readonly StateStore _store;
    private readonly ControlPlaneMetrics _metrics = new();
    private readonly VmPool _pool;

    public ControlPlaneClockTests()
    {
        _options = new ControlPlaneOptions
        {
            DataDirectory = _directory,
            Safekeepers = [new Uri("http://127.0.0.1:1")],
            Pageservers = [new Uri("http://127.0.0.1:2")],
            ComputeTokens = Storage.Testing.TestAuth.ComputeTokens,
            HeartbeatInterval = TimeSpan.FromMilliseconds(500),
            HeartbeatMisses = 3,
            UnresponsiveTimeout = TimeSpan.FromSeconds(10),
        };
        _store = new StateStore(Path.Combine(_directory, "state.bin"));
        _pool = new VmPool(_options, _store, _metrics, NullLogger.Instance);
    }

    private sealed class ScriptedProbe : IVmProbe
    {
        public StatusCode? Failure { get; set; } = StatusCode.DeadlineExceeded;
        public bool IsRunning(Vm vm) => true;

        public Task<HeartbeatResponse> HeartbeatAsync(Vm vm, TimeSpan timeout, CancellationToken ct) => Failure is { } code
            ? Task.FromException<HeartbeatResponse>(new RpcException(new Status(code, "scripted")))
            : Task.FromResult(new HeartbeatResponse { VmId = vm.Id, State = ComputeState.Idle });
    }

    private sealed class RecordedDeaths : IVmDeaths
    {
        public List<string> Reasons { get; } = [];

        public Task OnVmDeadAsync(Vm vm, string reason)
        {
            Reasons.Add(reason);
            return Task.CompletedTask;
        }
    }

    private (HeartbeatMonitor Monitor, ScriptedProbe Probe, RecordedDeaths Deaths, Vm Vm) Monitor()
    {
        var probe = new ScriptedProbe();
        var deaths = new RecordedDeaths();
        var vm = new Vm(new VmRecord("vm1", 1, 2, 3, Path.Combine(_directory, "vms", "vm1"), 0)) { State = VmState.Idle };
        return (new HeartbeatMonitor(_options, _pool, probe, deaths, _metrics, NullLogger.Instance, _time), probe, deaths, vm);
    }

    [Fact]
    public async Task Heartbeats_that_time_out_make_a_vm_dead_only_once_it_was_silent_for_the_unresponsive_timeout()
    {
        var (monitor, _, deaths, vm) = Monitor();
        for (int i = 0; i < 10; i++) // ten misses over 9 s: slow, not dead
        {
            await monitor.CheckAsync(vm, CancellationToken.None);
            _time.Advance(TimeSpan.FromSeconds(1));
        }
        Assert.Empty(deaths.Reasons);
        Assert.Equal(10, _metrics.HeartbeatFailures.Value);

        await monitor.CheckAsync(vm, CancellationToken.None); // silent for 10 s now
        Assert.Contains("11 heartbeats in a row failed over 10.0 s", Assert.Single(deaths.Reasons));
    }

    [Fact]
    public async Task Refused_heartbeats_make_a_vm_dead_after_the_misses_without_waiting()
    {
        var (monitor, probe, deaths, vm) = Monitor();
        probe.Failure = StatusCode.Unavailable;
        await monitor.CheckAsync(vm, CancellationToken.None);
        await monitor.CheckAsync(vm, CancellationToken.None);
        Assert.Empty(deaths.Reasons);
        await monitor.CheckAsync(vm, CancellationToken.None);
        Assert.Contains("3 heartbeats in a row failed over 0.0 s", Assert.Single(deaths.Reasons));
    }

    [Fact]
    public async Task An_answered_heartbeat_starts_the_silence_over()
    {
        var (monitor, probe, deaths, vm) = Monitor();
        for (int i = 0; i < 9; i++)
        {
            await monitor.CheckAsync(vm, CancellationToken.None);
            _time.Advance(TimeSpan.FromSeconds(1));
        }
        probe.Failure = null;
        await monitor.CheckAsync(vm, CancellationToken.None);
        Assert.Equal<DateTime?>(_time.GetUtcNow().UtcDateTime, vm.LastHeartbeat);

        probe.Failure = StatusCode.DeadlineExceeded;
        for (int i = 0; i < 9; i++)
        {
            _time.Advance(TimeSpan.FromSeconds(1));
            await monitor.CheckAsync(vm, CancellationToken.None);
        }
        Assert.Empty(deaths.Reasons); // 18 s of failures, but never 10 s in a row
    }

    private (IdleSuspender Suspender, EndpointRegistry Registry, SessionTracker Sessions) Suspender()
    {
        var registry = new EndpointRegistry(_store, TimeSpan.FromMinutes(5));
        var sessions = new SessionTracker(_time);
        var attacher = new EndpointAttacher(_options, registry, _pool, sessions, new PageserverRoute(_options, NullLogger.Instance), _metrics, NullLogger.Instance);
        var tenant = TimelineIds.New();
        registry.Create(new EndpointSpec("sleepy", tenant, TimelineIds.New(), SuspendTimeout: TimeSpan.FromMinutes(1)));
        registry.SetVm("sleepy", "vm1"); // attached (to a VM the empty pool does not know: the detach only clears it)
        sessions.Touch("sleepy");
        return (new IdleSuspender(_options, registry, sessions, attacher, _metrics, NullLogger.Instance, _time), registry, sessions);
    }

    [Fact]
    public async Task An_endpoint_is_suspended_once_idle_for_its_suspend_timeout_and_not_before()
    {
        var (suspender, registry, _) = Suspender();
        _time.Advance(TimeSpan.FromSeconds(59));
        Assert.Equal(0, await suspender.SuspendIdleAsync(CancellationToken.None));
        Assert.Equal("vm1", registry.Get("sleepy").VmId);

        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(1, await suspender.SuspendIdleAsync(CancellationToken.None));
        Assert.Null(registry.Get("sleepy").VmId);
        Assert.Equal(1, _metrics.Suspends.Value);
    }

    [Fact]
    public async Task An_endpoint_with_a_session_is_never_suspended_and_its_idle_time_starts_when_the_session_ends()
    {
        var (suspender, registry, sessions) = Suspender();
        sessions.Started("sleepy");
        _time.Advance(TimeSpan.FromHours(1));
        Assert.Equal(0, await suspender.SuspendIdleAsync(CancellationToken.None));

        sessions.Ended("sleepy");
        _time.Advance(TimeSpan.FromSeconds(59));
        Assert.Equal(0, await suspender.SuspendIdleAsync(CancellationToken.None));
        Assert.Equal("vm1", registry.Get("sleepy").VmId);
    }

    [Fact]
    public async Task The_suspender_loop_suspends_on_the_heartbeat_ticks_of_its_clock()
    {
        var (suspender, registry, _) = Suspender();
        await suspender.StartAsync(CancellationToken.None);
        try
        {
            // Each probe moves the fake clock 5 s on (one tick of the loop): the suspension comes at the first tick past a minute.
            await Eventually.ReachAsync(() =>
            {
                _time.Advance(TimeSpan.FromSeconds(5));
                return Task.FromResult(registry.Get("sleepy").VmId);
            }, vm => vm is null, TimeSpan.FromSeconds(60), () => $"fake clock at {_time.GetUtcNow()}");
            Assert.True(_time.GetUtcNow() >= new DateTimeOffset(2026, 1, 1, 0, 1, 0, TimeSpan.Zero), $"suspended early, at {_time.GetUtcNow()}");
        }
        finally { await suspender.StopAsync(CancellationToken.None); }
    }

    public void Dispose()
    {
        _pool.DisposeAsync().AsTask().GetAwaiter().GetResult();
        Directory.Delete(_directory, recursive: true);
    }
}
