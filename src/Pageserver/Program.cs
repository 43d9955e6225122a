using System.Globalization;
using System.Net;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using Storage.Core.Grpc;
using Storage.Core.Observability;
using Storage.Core.Processes;
using Storage.Core.Postgres;
using Storage.ObjectStore;
using Storage.Pageserver;
using Storage.Pageserver.Timelines;

// The pageserver process. Options: --id NAME --listen HOST:PORT --http HOST:PORT --data-dir DIR
// --safekeepers URL,URL,... --log-format json|text
// Object storage (the durable copy): --remote-storage DIR, or --s3-endpoint URL --s3-bucket NAME ...
// Images: --image-after-mb N (default 64) --image-after-seconds N (default 300);
// retention: --retention-seconds N (default 7 days); --replay false turns the replay instance off.
// Placement: --controller URL (the storage controller: register at start, take its placements and
// generations); --secondary-refresh-ms N (default 2000) how often a secondary downloads new layers;
// --advertise URL the address it registers with (default http://<--listen>; set it when listening on 0.0.0.0).
var config = new ConfigurationBuilder().AddCommandLine(args).Build();
var nodeId = config["id"] ?? "ps1";
var listen = IPEndPoint.Parse(config["listen"] ?? "127.0.0.1:9891");
var http = config["http"] is { } h ? IPEndPoint.Parse(h) : null;
var options = new PageserverOptions
{
    NodeId = nodeId,
    DataDirectory = Path.GetFullPath(config["data-dir"] ?? $".storage/{nodeId}"),
    Binaries = PostgresBinaries.Locate(),
    Safekeepers = (config["safekeepers"] ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(s => new Uri(s)).ToList(),
    ImageAfterBytes = long.Parse(config["image-after-mb"] ?? "64", CultureInfo.InvariantCulture) << 20,
    ImageAfter = TimeSpan.FromSeconds(double.Parse(config["image-after-seconds"] ?? "300", CultureInfo.InvariantCulture)),
    Retention = TimeSpan.FromSeconds(double.Parse(config["retention-seconds"] ?? (7 * 24 * 3600).ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture)),
    ReplayEnabled = !string.Equals(config["replay"], "false", StringComparison.OrdinalIgnoreCase),
    Controller = config["controller"] is { Length: > 0 } c ? new Uri(c) : null,
    AdvertisedAddress = new Uri(config["advertise"] is { Length: > 0 } advertise ? advertise : $"http://{listen}"),
    SecondaryRefresh = TimeSpan.FromMilliseconds(double.Parse(config["secondary-refresh-ms"] ?? "2000", CultureInfo.InvariantCulture)),
};

using var loggers = Logging.CreateFactory(config["log-format"]);
var log = loggers.CreateLogger("Storage.Pageserver");
var metrics = new PageserverMetrics(new MetricsRegistry());
using var remote = await ObjectStoreFromOptions.CreateAsync(name => config[name], loggers);
await using var timelines = new TimelineManager(options, remote, loggers, metrics);
await timelines.LoadAsync(CancellationToken.None);

await using var server = new GrpcServer(new GrpcServerOptions { GrpcEndpoint = listen, HttpEndpoint = http }, loggers);
new PageserverService(timelines, options, metrics, log).MapTo(server);
ServiceLifetime.MapMetrics(server, metrics.Registry);
await server.StartAsync();
log.LogInformation("pageserver {NodeId} serving gRPC on {GrpcAddress}, HTTP on {HttpAddress}, data in {DataDir}, {Count} timelines, remote storage {Remote}",
    nodeId, server.GrpcAddress, server.HttpAddress, options.DataDirectory, timelines.All.Count, remote is null ? "none" : remote.GetType().Name);
ServiceLifetime.AnnounceReady(server);

await ServiceLifetime.WaitForShutdownAsync();
log.LogInformation("pageserver {NodeId} shutting down", nodeId);
await server.StopAsync();
return 0;
