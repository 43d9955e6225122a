using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Storage.Core.Hosting;
using Storage.Core.Observability;
using Storage.Core.Processes;
using Storage.ObjectStore;
using Storage.Safekeeper;
using Storage.Safekeeper.Offload;
using Storage.Safekeeper.Replication;
using Storage.Safekeeper.Trim;

// The safekeeper process: serves the WAL consensus and WAL reads for every timeline under its data
// directory, offloads finished WAL segments to object storage (when one is named) and trims WAL
// below min(remote_consistent_lsn, backup_lsn, commit_lsn), and, with --pg-listen, serves committed WAL
// to standbys over PostgreSQL's replication protocol. `--help` lists the options.
var parsed = ServiceOptions.Parse<SafekeeperOptions>(args, "safekeeper: the acceptor side of the WAL consensus, one per availability zone");
if (parsed.Options is not { } options) return parsed.ExitCode;

using var loggers = Logging.CreateFactory(options.Service.LogFormat);
using var remote = await ObjectStoreFromOptions.CreateAsync(options.ObjectStore, loggers);

var builder = ServiceHost.CreateBuilder(options.Service, options.Auth, inlineScheduling: true);
var metrics = new SafekeeperMetrics();
var registry = new TimelineRegistry(options.DataDirectory, new NodeIdentity(options.Id, options.AvailabilityZone), loggers, metrics);
registry.LoadAll();
builder.Services.AddSingleton(metrics);
builder.Services.AddSingleton(registry);
builder.Services.AddHostedService(sp => new WalTrimmer(registry, loggers.CreateLogger("Storage.Safekeeper.Trim"),
    TimeSpan.FromMilliseconds(options.TrimIntervalMs), sp.GetRequiredService<TimeProvider>()));
if (remote is not null)
    builder.Services.AddHostedService(sp => new WalOffloader(registry, remote, options.Id, loggers.CreateLogger("Storage.Safekeeper.Offload"), metrics,
        TimeSpan.FromMilliseconds(options.OffloadIntervalMs), TimeSpan.FromSeconds(options.OffloadLeaseSeconds), sp.GetRequiredService<TimeProvider>()));
ReplicationListener? replication = null;
if (options.PgListen is { } pgListen)
{
    var authenticator = new ReplicationAuthenticator(options.Auth.Validator()); // validation: --pg-listen comes with a key
    var settings = new WalSenderSettings();
    var replicationLog = loggers.CreateLogger("Storage.Safekeeper.Replication");
    replication = new ReplicationListener(pgListen,
        socket => new ReplicationConnection(socket, registry, authenticator, metrics, settings, TimeProvider.System, replicationLog), replicationLog);
    builder.Services.AddHostedService(_ => replication);
}

await using var app = builder.Build();
app.MapGrpcService<SafekeeperService>();
ServiceHost.MapMetrics(app, metrics.Registry);
var log = loggers.CreateLogger("Storage.Safekeeper");
log.LogInformation("safekeeper {NodeId} ({AvailabilityZone}) serving gRPC on {GrpcAddress}, HTTP on {HttpAddress}, data in {DataDir}",
    options.Id, options.AvailabilityZone, options.Service.Listen, options.Service.Http, options.DataDirectory);
await ServiceHost.RunAsync(app, () => replication is null ? "" : $"pg={replication.Bound}");
log.LogInformation("safekeeper {NodeId} shutting down", options.Id);
return 0;
