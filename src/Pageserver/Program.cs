using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Storage.Core.Hosting;
using Storage.Core.Observability;
using Storage.Core.Postgres;
using Storage.Core.Processes;
using Storage.ObjectStore;
using Storage.Pageserver;
using Storage.Pageserver.Timelines;

// The pageserver process: ingests its timelines' committed WAL from the safekeepers, takes images
// with a replay instance, keeps the durable copy in object storage (when one is named) and serves
// basebackups. With --controller it holds only the timelines the storage controller places on it,
// under the generations it issues. `--help` lists the options.
var parsed = ServiceOptions.Parse<PageserverOptions>(args, "pageserver: ingests committed WAL, keeps images, serves basebackups");
if (parsed.Options is not { } options) return parsed.ExitCode;

using var loggers = Logging.CreateFactory(options.Service.LogFormat);
using var remote = await ObjectStoreFromOptions.CreateAsync(options.ObjectStore, loggers);

var binaries = PostgresBinaries.Locate(); // initdb and the replay instance's postgres
var builder = ServiceHost.CreateBuilder(options.Service, options.Auth);
var metrics = new PageserverMetrics();
builder.Services.AddSingleton(options);
builder.Services.AddSingleton(metrics);
builder.Services.AddSingleton(sp => new TimelineManager(options, binaries, remote, loggers, metrics, sp.GetRequiredService<TimeProvider>()));
builder.Services.AddHostedService<TimelineLifetime>();
builder.Services.AddSingleton<PageserverService>();

await using var app = builder.Build();
app.MapGrpcService<PageserverService>();
ServiceHost.MapMetrics(app, metrics.Registry);
var log = loggers.CreateLogger("Storage.Pageserver");
log.LogInformation("pageserver {NodeId} serving gRPC on {GrpcAddress}, HTTP on {HttpAddress}, data in {DataDir}, remote storage {Remote}, storage controller {Controller}",
    options.Id, options.Service.Listen, options.Service.Http, options.DataDirectory, remote is null ? "none" : remote.GetType().Name,
    options.Controller?.ToString() ?? "none");
await ServiceHost.RunAsync(app);
log.LogInformation("pageserver {NodeId} shutting down", options.Id);
return 0;
