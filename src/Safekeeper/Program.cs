using System.Net;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using Storage.Core.Grpc;
using Storage.Core.Observability;
using Storage.Core.Processes;
using Storage.Safekeeper;

// The safekeeper process: serves the WAL consensus and WAL reads for every timeline under its
// data directory. Options: --id N --listen HOST:PORT --http HOST:PORT --data-dir DIR --az NAME
// WAL offload to object storage (off unless given): --remote-storage DIR (a local folder), or
// --s3-endpoint URL --s3-bucket NAME [--s3-access-key K --s3-secret-key S --s3-region R];
// --offload-interval-ms N (default 1000), --offload-lease-seconds N (default 10).
// WAL trimming below min(remote_consistent_lsn, backup_lsn, commit_lsn): --trim-interval-ms N (default 1000).
var config = new ConfigurationBuilder().AddCommandLine(args).Build();
var nodeId = ulong.Parse(config["id"] ?? "1");
var listen = IPEndPoint.Parse(config["listen"] ?? "127.0.0.1:7671");
var http = config["http"] is { } h ? IPEndPoint.Parse(h) : null;
var dataDir = Path.GetFullPath(config["data-dir"] ?? $".storage/sk{nodeId}");
var az = config["az"] ?? "az-a";

using var loggers = Logging.CreateFactory(config["log-format"]);
var log = loggers.CreateLogger("Storage.Safekeeper");
var metricsRegistry = new MetricsRegistry();
var metrics = new SafekeeperMetrics(metricsRegistry);
await using var registry = new TimelineRegistry(dataDir, new NodeIdentity(nodeId, az), loggers, metrics);
registry.LoadAll();

using var remote = await Storage.ObjectStore.ObjectStoreFromOptions.CreateAsync(name => config[name], loggers);
await using var offloader = remote is null ? null : new Storage.Safekeeper.Offload.WalOffloader(registry, remote, nodeId, loggers.CreateLogger("Storage.Safekeeper.Offload"), metrics,
    TimeSpan.FromMilliseconds(int.Parse(config["offload-interval-ms"] ?? "1000")), TimeSpan.FromSeconds(int.Parse(config["offload-lease-seconds"] ?? "10")));
offloader?.Start();
await using var trimmer = new Storage.Safekeeper.Trim.WalTrimmer(registry, loggers.CreateLogger("Storage.Safekeeper.Trim"),
    TimeSpan.FromMilliseconds(int.Parse(config["trim-interval-ms"] ?? "1000")));
trimmer.Start();

await using var server = new GrpcServer(new GrpcServerOptions { GrpcEndpoint = listen, HttpEndpoint = http, InlineScheduling = true }, loggers);
new SafekeeperService(registry, metrics, log).MapTo(server);
ServiceLifetime.MapMetrics(server, metricsRegistry);
await server.StartAsync();
log.LogInformation("safekeeper {NodeId} ({AvailabilityZone}) serving gRPC on {GrpcAddress}, HTTP on {HttpAddress}, data in {DataDir}",
    nodeId, az, server.GrpcAddress, server.HttpAddress, dataDir);
ServiceLifetime.AnnounceReady(server);

await ServiceLifetime.WaitForShutdownAsync();
log.LogInformation("safekeeper {NodeId} shutting down", nodeId);
await server.StopAsync();
return 0;
