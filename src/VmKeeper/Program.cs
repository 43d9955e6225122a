using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Storage.Core.Hosting;
using Storage.Core.Observability;
using Storage.VmKeeper;

// The VM keeper of docker-compose.yml: starts again the pool's VM containers that were killed
// (`docker kill`, which Docker's restart policies leave down). It needs the Docker Engine's socket
// and uses it only to list, inspect and start the containers labelled as its project's pool VMs.
// /metrics on --http. `--help` lists the options.
var parsed = ServiceOptions.Parse<VmKeeperOptions>(args, "VM keeper: starts again the compose project's pool VM containers that were killed");
if (parsed.Options is not { } options) return parsed.ExitCode;

using var loggers = Logging.CreateFactory(options.LogFormat);
var log = loggers.CreateLogger("Storage.VmKeeper");
if (!File.Exists(options.DockerSocket))
{
    Console.Error.WriteLine($"vmkeeper: no Docker Engine socket at {options.DockerSocket} (mount it, or give --docker-socket)");
    return 2;
}
using var docker = new DockerEngine(options.DockerSocket, TimeSpan.FromSeconds(10));

// Which project: given, or this container's own (its host name is its id).
var project = options.Project;
if (project is null)
{
    try
    {
        var labels = await docker.LabelsAsync(Environment.MachineName, CancellationToken.None);
        project = labels.GetValueOrDefault("com.docker.compose.project");
    }
    catch (Exception e) when (e is DockerEngineException or HttpRequestException)
    {
        Console.Error.WriteLine($"vmkeeper: cannot find this container's compose project ({e.Message}): give --project");
        return 2;
    }
    if (project is null)
    {
        Console.Error.WriteLine($"vmkeeper: container {Environment.MachineName} has no com.docker.compose.project label: give --project");
        return 2;
    }
}

var metrics = new VmKeeperMetrics();
var builder = ServiceHost.CreateHttpBuilder(options.Http, options.LogFormat);
builder.Services.AddHostedService(services => new PoolKeeper(docker, [$"com.docker.compose.project={project}", options.PoolLabel],
    TimeSpan.FromMilliseconds(options.IntervalMs), metrics, services.GetRequiredService<ILogger<PoolKeeper>>(), TimeProvider.System));
await using var app = builder.Build();
ServiceHost.MapMetrics(app, metrics.Registry);
await ServiceHost.RunAsync(app, readyExtra: () =>
{
    log.LogInformation("keeping the pool VM containers of project {Project} (label {PoolLabel}), checked every {IntervalMs} ms",
        project, options.PoolLabel, options.IntervalMs);
    return $"project={project}";
});
return 0;
