using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Storage.Compute;
using Storage.Core.Hosting;
using Storage.Core.Observability;
using Storage.Core.Postgres;
using Storage.Core.Processes;

// The compute agent: one process is one pooled VM, idle until the control plane attaches an
// endpoint to it (then it runs that endpoint's PostgreSQL and walproposer). `--help` lists the options.
var parsed = ServiceOptions.Parse<ComputeOptions>(args, "compute agent: one pooled VM running an endpoint's PostgreSQL and its walproposer");
if (parsed.Options is not { } options) return parsed.ExitCode;

using var loggers = Logging.CreateFactory(options.Service.LogFormat);
var log = loggers.CreateLogger("Storage.Compute");
var pgPort = options.PostgresPort ?? ServiceProcess.FreePort();
var metrics = new ComputeMetrics();
var agentOptions = new AgentOptions(options.Id, options.WorkDirectory, pgPort, PostgresBinaries.Locate())
{
    MaxRetainedWalBytes = options.MaxRetainedWalMb << 20,
    ListenAddresses = options.PostgresListen,
};
await using var agent = new ComputeAgent(agentOptions, log, metrics, TimeProvider.System);
metrics.Observe(agent);

var builder = ServiceHost.CreateBuilder(options.Service, options.Auth);
builder.Services.AddSingleton(agent); // an instance: the host does not dispose it, the await using above does (after the host stopped)
builder.Services.AddSingleton(metrics);
builder.Services.AddHostedService<RetentionSlotLoop>();
await using var app = builder.Build();
app.MapGrpcService<ComputeService>();
ServiceHost.MapMetrics(app, metrics.Registry);
var bound = app.Services.GetRequiredService<BoundEndpoints>();
// Warm before announcing: the pool counts a VM as a spare once it is ready, and a failover onto a cold one pays the JIT.
await ServiceHost.RunAsync(app, readyExtra: () => $"pg={pgPort}", beforeReady: async () =>
{
    log.LogInformation("compute agent {VmId} idle, control API on {GrpcAddress}, HTTP on {HttpAddress}, PostgreSQL port {Port}, work dir {WorkDir}",
        options.Id, bound.Grpc, bound.Http, pgPort, options.WorkDirectory);
    await agent.WarmUpAsync(new Uri($"http://{bound.Grpc}"));
});
log.LogInformation("compute agent {VmId} shutting down", options.Id);
return 0;
