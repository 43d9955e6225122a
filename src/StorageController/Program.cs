using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Storage.Core.Hosting;
using Storage.Core.Observability;
using Storage.Core.Processes;
using Storage.StorageController;

// The storage controller process: places timelines on pageservers (one attached, one secondary),
// issues generations, heartbeats the pageservers and fails a timeline over to its secondary when
// the attached one stops answering. `--help` lists the options.
var parsed = ServiceOptions.Parse<ControllerOptions>(args, "storage controller: places timelines on pageservers, issues generations, fails over");
if (parsed.Options is not { } options) return parsed.ExitCode;

// Before anything reads or writes the state: a second controller on it would issue generations
// the first does not know of.
StateDirectoryLock stateLock;
try { stateLock = StateDirectoryLock.Acquire(options.DataDirectory); }
catch (StateDirectoryLockedException e)
{
    Console.Error.WriteLine(e.Message);
    return 3;
}
using var heldForTheProcessLifetime = stateLock;

var builder = ServiceHost.CreateBuilder(options.Service, options.Auth);
var metrics = new ControllerMetrics();
var book = new PlacementBook(new ControllerStore(Path.Combine(options.DataDirectory, "state.bin")));
builder.Services.AddSingleton(options);
builder.Services.AddSingleton(metrics);
builder.Services.AddSingleton(book);
builder.Services.AddSingleton<NodeHealth>();
builder.Services.AddSingleton<ControllerService>(); // one instance: it serialises creations
builder.Services.AddHostedService<Heartbeats>();
builder.Services.AddHostedService<Reconciler>();

await using var app = builder.Build();
app.MapGrpcService<ControllerService>();
ServiceHost.MapMetrics(app, metrics.Registry);
var log = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Storage.StorageController");
log.LogInformation("storage controller serving gRPC on {GrpcAddress}, HTTP on {HttpAddress}, state in {DataDir}: {Nodes} pageservers, {Timelines} timelines",
    options.Service.Listen, options.Service.Http, options.DataDirectory, book.Nodes.Count, book.Placements.Count);
await ServiceHost.RunAsync(app);
log.LogInformation("storage controller shutting down");
return 0;
