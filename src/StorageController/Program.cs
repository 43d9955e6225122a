using System.Globalization;
using System.Net;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using Storage.Core.Grpc;
using Storage.Core.Observability;
using Storage.Core.Processes;
using Storage.StorageController;

// The storage controller process. Options: --listen HOST:PORT --http HOST:PORT --data-dir DIR
// --heartbeat-ms N (default 500) --failure-timeout-ms N (default 2000: a refusing pageserver)
// --unresponsive-timeout-ms N (default 10000: a pageserver whose heartbeats time out) --log-format json|text
var config = new ConfigurationBuilder().AddCommandLine(args).Build();
var listen = IPEndPoint.Parse(config["listen"] ?? "127.0.0.1:1234");
var http = config["http"] is { } h ? IPEndPoint.Parse(h) : null;
var options = new ControllerOptions
{
    DataDirectory = Path.GetFullPath(config["data-dir"] ?? ".storage/controller"),
    HeartbeatInterval = TimeSpan.FromMilliseconds(double.Parse(config["heartbeat-ms"] ?? "500", CultureInfo.InvariantCulture)),
    FailureTimeout = TimeSpan.FromMilliseconds(double.Parse(config["failure-timeout-ms"] ?? "2000", CultureInfo.InvariantCulture)),
    UnresponsiveTimeout = TimeSpan.FromMilliseconds(double.Parse(config["unresponsive-timeout-ms"] ?? "10000", CultureInfo.InvariantCulture)),
};
if (options.UnresponsiveTimeout < options.FailureTimeout)
{
    Console.Error.WriteLine("--unresponsive-timeout-ms must be at least --failure-timeout-ms");
    return 2;
}
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

using var loggers = Logging.CreateFactory(config["log-format"]);
var log = loggers.CreateLogger("Storage.StorageController");
var metrics = new ControllerMetrics(new MetricsRegistry());
var book = new PlacementBook(new ControllerStore(Path.Combine(options.DataDirectory, "state.bin")));
await using var health = new NodeHealth(book, options, metrics, log);
await using var reconciler = new Reconciler(book, health, options, metrics, log);

await using var server = new GrpcServer(new GrpcServerOptions { GrpcEndpoint = listen, HttpEndpoint = http }, loggers);
new ControllerService(book, health, metrics, log).MapTo(server);
ServiceLifetime.MapMetrics(server, metrics.Registry);
await server.StartAsync();
health.Watch();
reconciler.Start();
log.LogInformation("storage controller serving gRPC on {GrpcAddress}, HTTP on {HttpAddress}, state in {DataDir}: {Nodes} pageservers, {Timelines} timelines",
    server.GrpcAddress, server.HttpAddress, options.DataDirectory, book.Nodes.Count, book.Placements.Count);
ServiceLifetime.AnnounceReady(server);

await ServiceLifetime.WaitForShutdownAsync();
log.LogInformation("storage controller shutting down");
await server.StopAsync();
return 0;
