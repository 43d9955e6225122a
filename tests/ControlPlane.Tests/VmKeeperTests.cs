using System.Collections.Concurrent;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging.Testing;
using Storage.Core.Hosting;
using Storage.Core.Postgres;
using Storage.VmKeeper;

namespace Storage.ControlPlane.Tests;

/// <summary>
/// The VM keeper of docker-compose.yml against a fake Docker Engine API on a Unix socket (the real
/// engine: DockerClusterTests): it starts again the pool VMs that were SIGKILLed, of its own
/// project only, and leaves those stopped by hand; an engine that fails is counted and logged, not fatal.
/// </summary>
public sealed class VmKeeperTests
{
    [Theory]
    [InlineData("exited", false, 137, true)]   // docker kill (SIGKILL): Docker leaves it down
    [InlineData("exited", false, 0, false)]    // docker stop: the agent exited on SIGTERM
    [InlineData("exited", false, 143, false)]  // docker stop, exit by the signal
    [InlineData("exited", true, 137, false)]   // a crash its restart policy is bringing back
    [InlineData("running", false, 0, false)]
    public void Only_an_exited_SIGKILLed_vm_that_no_restart_policy_restarts_is_started_again(string status, bool restarting, int exitCode, bool start) =>
        Assert.Equal(start, KilledVm.ShouldStartAgain(new ContainerState("id", "p_vm1_1", status, restarting, exitCode, OomKilled: false)));

    [Fact]
    public async Task Keeper_starts_the_killed_vm_of_its_project_and_leaves_the_stopped_one()
    {
        await using var engine = await FakeEngine.StartAsync();
        engine.Add("a1", "p_vm1_1", "p", "vm1", "exited", exitCode: 137);
        engine.Add("a2", "p_vm2_1", "p", "vm2", "exited", exitCode: 0);
        engine.Add("b1", "q_vm1_1", "q", "vm1", "exited", exitCode: 137);
        engine.Add("a3", "p_sk1_1", "p", "sk1", "exited", exitCode: 137, pool: false);
        using var docker = new DockerEngine(engine.Socket, TimeSpan.FromSeconds(10));
        var metrics = new VmKeeperMetrics();
        var keeper = Keeper(docker, metrics, ProjectPool);

        await keeper.CheckAsync(CancellationToken.None);

        Assert.Equal(["a1"], engine.Started);
        Assert.Equal("running", engine.StateOf("a1"));
        Assert.Equal(1, metrics.Starts.WithLabels("vm1").Value);
        await keeper.CheckAsync(CancellationToken.None); // nothing more to start
        Assert.Equal(["a1"], engine.Started);
        Assert.Equal(1, metrics.Members.WithLabels("running").Value);
        Assert.Equal(1, metrics.Members.WithLabels("exited").Value); // vm2 stays down: stopped by hand
    }

    [Fact]
    public async Task An_engine_that_refuses_is_counted_and_logged_once_and_the_next_check_goes_on()
    {
        await using var engine = await FakeEngine.StartAsync();
        engine.Add("a1", "p_vm1_1", "p", "vm1", "exited", exitCode: 137);
        engine.FailWith = "permission denied while trying to connect";
        using var docker = new DockerEngine(engine.Socket, TimeSpan.FromSeconds(10));
        var metrics = new VmKeeperMetrics();
        var log = new FakeLogger<PoolKeeper>();
        var keeper = Keeper(docker, metrics, ProjectPool, log);

        await keeper.CheckAsync(CancellationToken.None);
        await keeper.CheckAsync(CancellationToken.None);
        Assert.Equal(2, metrics.CheckFailures.Value);
        Assert.Single(Messages(log), l => l.Contains("500 permission denied while trying to connect"));

        engine.FailWith = null;
        await keeper.CheckAsync(CancellationToken.None);
        Assert.Equal(["a1"], engine.Started);
        Assert.Contains(Messages(log), l => l.Contains("answers again"));
    }

    [Theory]
    [InlineData("not json")]
    [InlineData("[{\"Id\": 42}]")]
    [InlineData("{}")]
    public async Task An_answer_not_shaped_as_the_engine_API_is_a_failed_check(string body)
    {
        await using var engine = await FakeEngine.StartAsync();
        engine.Garbage = body;
        using var docker = new DockerEngine(engine.Socket, TimeSpan.FromSeconds(10));
        var metrics = new VmKeeperMetrics();
        var keeper = Keeper(docker, metrics, ["storage.pool=vm"]);
        await keeper.CheckAsync(CancellationToken.None);
        Assert.Equal(1, metrics.CheckFailures.Value);
    }

    [Fact]
    public async Task An_absent_engine_socket_is_a_failed_check()
    {
        using var docker = new DockerEngine(Path.Combine(Path.GetTempPath(), $"no-docker-{Guid.NewGuid():N}.sock"), TimeSpan.FromSeconds(5));
        var metrics = new VmKeeperMetrics();
        var keeper = Keeper(docker, metrics, ["storage.pool=vm"]);
        await keeper.CheckAsync(CancellationToken.None);
        Assert.Equal(1, metrics.CheckFailures.Value);
    }

    [Theory]
    [InlineData("--pool-label", "novalue", "--pool-label must be KEY=VALUE")]
    [InlineData("--interval-ms", "0", "--interval-ms must be positive")]
    [InlineData("--log-format", "xml", "--log-format must be json or text, not 'xml'")]
    public void Bad_options_are_refused_with_a_reason(string flag, string value, string reason)
    {
        var errors = new StringWriter();
        var outcome = ServiceOptions.Parse<VmKeeperOptions>([flag, value], "vmkeeper", TextWriter.Null, errors);
        Assert.Null(outcome.Options);
        Assert.NotEqual(0, outcome.ExitCode);
        Assert.Contains(reason, errors.ToString());
    }

    [Fact]
    public async Task The_keeper_process_refuses_to_start_without_an_engine_socket()
    {
        var (exitCode, stderr) = await RunKeeperAsync("--docker-socket", Path.Combine(Path.GetTempPath(), $"no-docker-{Guid.NewGuid():N}.sock"));
        Assert.Equal(2, exitCode);
        Assert.Contains("no Docker Engine socket at", stderr);
    }

    [Theory]
    [InlineData(false, "cannot find this container's compose project (Docker Engine: GET /containers/")] // the engine does not know it
    [InlineData(true, "has no com.docker.compose.project label: give --project")]                        // not started by compose
    public async Task The_keeper_process_without_project_needs_its_own_container_to_be_a_compose_one(bool known, string reason)
    {
        await using var engine = await FakeEngine.StartAsync();
        // The keeper asks for its own container by its host name, which is this machine's too.
        if (known) engine.Add(Environment.MachineName, "standalone", project: null, service: null, "running", exitCode: 0, pool: false);
        var (exitCode, stderr) = await RunKeeperAsync("--docker-socket", engine.Socket, "--http", "127.0.0.1:0");
        Assert.Equal(2, exitCode);
        Assert.Contains(reason, stderr);
    }

    /// <summary>Runs the VM keeper's program until it exits (a minute at most) and returns its exit code and stderr.</summary>
    private static async Task<(int ExitCode, string Stderr)> RunKeeperAsync(params string[] args)
    {
        var result = await ProcessRunner.RunAsync("dotnet", [Path.Combine(AppContext.BaseDirectory, "Storage.VmKeeper.dll"), .. args], TimeSpan.FromMinutes(1));
        return (result.ExitCode, result.StandardError);
    }

    /// <summary>The pool of compose project p, as the keeper of that project filters it.</summary>
    private static readonly string[] ProjectPool = ["com.docker.compose.project=p", "storage.pool=vm"];

    private static PoolKeeper Keeper(DockerEngine docker, VmKeeperMetrics metrics, IReadOnlyList<string> poolLabels, ILogger<PoolKeeper>? log = null) =>
        new(docker, poolLabels, TimeSpan.FromSeconds(1), metrics, log ?? NullLogger<PoolKeeper>.Instance, TimeProvider.System);

    private static IEnumerable<string> Messages(FakeLogger<PoolKeeper> log) => log.Collector.GetSnapshot().Select(r => r.Message);

    /// <summary>The Docker Engine API's list, inspect and start, over containers held in memory, label filters applied.</summary>
    private sealed class FakeEngine : IAsyncDisposable
    {
        private sealed record Container(string Id, string Name, Dictionary<string, string> Labels, string State, int ExitCode);

        private readonly ConcurrentDictionary<string, Container> _containers = new();
        private readonly WebApplication _app;
        private readonly string _directory;

        private FakeEngine(WebApplication app, string directory) => (_app, _directory) = (app, directory);

        public string Socket => Path.Combine(_directory, "docker.sock");
        public ConcurrentQueue<string> StartedQueue { get; } = new();
        public IReadOnlyList<string> Started => StartedQueue.ToList();
        public string? FailWith { get; set; }
        public string? Garbage { get; set; }

        public static async Task<FakeEngine> StartAsync()
        {
            var directory = Directory.CreateTempSubdirectory("fake-docker-").FullName;
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.WebHost.ConfigureKestrel(k => k.ListenUnixSocket(Path.Combine(directory, "docker.sock")));
            var app = builder.Build();
            var engine = new FakeEngine(app, directory);
            engine.Map(app);
            await app.StartAsync();
            return engine;
        }

        /// <summary>A container; without a project and service it carries no compose labels.</summary>
        public void Add(string id, string name, string? project, string? service, string state, int exitCode, bool pool = true)
        {
            var labels = new Dictionary<string, string>();
            if (project is not null) labels["com.docker.compose.project"] = project;
            if (service is not null) labels["com.docker.compose.service"] = service;
            if (pool) labels["storage.pool"] = "vm";
            _containers[id] = new Container(id, name, labels, state, exitCode);
        }

        public string StateOf(string id) => _containers[id].State;

        private void Map(WebApplication app)
        {
            app.Use(async (context, next) =>
            {
                if (Garbage is not null) { await context.Response.WriteAsync(Garbage); return; }
                if (FailWith is null) { await next(context); return; }
                context.Response.StatusCode = 500;
                await context.Response.WriteAsJsonAsync(new Dictionary<string, string> { ["message"] = FailWith });
            });
            app.MapGet("/containers/json", (HttpRequest request) =>
            {
                var filters = JsonSerializer.Deserialize<Dictionary<string, string[]>>(request.Query["filters"].ToString())!;
                var wanted = filters.GetValueOrDefault("label") ?? [];
                return Results.Json(_containers.Values
                    .Where(c => wanted.All(l => l.Split('=', 2) is [var key, var value] && c.Labels.GetValueOrDefault(key) == value))
                    .Select(c => new Dictionary<string, object> { ["Id"] = c.Id, ["Names"] = new[] { "/" + c.Name }, ["Labels"] = c.Labels, ["State"] = c.State }));
            });
            app.MapGet("/containers/{id}/json", (string id) => _containers.TryGetValue(id, out var c)
                ? Results.Json(new Dictionary<string, object>
                {
                    ["Id"] = c.Id, ["Name"] = "/" + c.Name, ["Config"] = new Dictionary<string, object> { ["Labels"] = c.Labels },
                    ["State"] = new Dictionary<string, object> { ["Status"] = c.State, ["Restarting"] = false, ["ExitCode"] = c.ExitCode, ["OOMKilled"] = false },
                })
                : NoSuchContainer(id));
            app.MapPost("/containers/{id}/start", (string id) =>
            {
                if (!_containers.TryGetValue(id, out var c)) return NoSuchContainer(id);
                if (c.State == "running") return Results.StatusCode(304);
                _containers[id] = c with { State = "running", ExitCode = 0 };
                StartedQueue.Enqueue(id);
                return Results.NoContent();
            });
        }

        private static IResult NoSuchContainer(string id) =>
            Results.Json(new Dictionary<string, string> { ["message"] = $"No such container: {id}" }, statusCode: 404);

        public async ValueTask DisposeAsync()
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
            Directory.Delete(_directory, recursive: true);
        }
    }
}
