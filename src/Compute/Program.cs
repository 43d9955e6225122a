using System.Globalization;
using System.Net;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using Storage.Compute;
using Storage.Core.Grpc;
using Storage.Core.Observability;
using Storage.Core.Postgres;
using Storage.Core.Processes;

// The compute agent: one process is one pooled VM. Options:
// --id NAME --listen HOST:PORT --http HOST:PORT --work-dir DIR --pg-port PORT --log-format json|text
// --max-retained-wal-mb N (1024): pg_wal kept below the commit LSN for a lagging safekeeper
// --pg-listen ADDRESSES (127.0.0.1): PostgreSQL's listen_addresses; another (a VM container: "*") also
//   lets the hosts of its networks log in with SCRAM, so a proxy elsewhere reaches it
var config = new ConfigurationBuilder().AddCommandLine(args).Build();
var vmId = config["id"] ?? "vm1";
var listen = IPEndPoint.Parse(config["listen"] ?? "127.0.0.1:7691");
var http = config["http"] is { } h ? IPEndPoint.Parse(h) : null;
var workDir = Path.GetFullPath(config["work-dir"] ?? $".storage/{vmId}");
var pgPort = config["pg-port"] is { } p ? int.Parse(p, CultureInfo.InvariantCulture) : ServiceProcess.FreePort();

using var loggers = Logging.CreateFactory(config["log-format"]);
var log = loggers.CreateLogger("Storage.Compute");
var metrics = new ComputeMetrics(new MetricsRegistry());
var agentOptions = new AgentOptions(vmId, workDir, pgPort, PostgresBinaries.Locate());
if (config["pg-listen"] is { Length: > 0 } pgListen) agentOptions = agentOptions with { ListenAddresses = pgListen };
if (config["max-retained-wal-mb"] is { } retained) agentOptions = agentOptions with { MaxRetainedWalBytes = long.Parse(retained, CultureInfo.InvariantCulture) << 20 };
await using var agent = new ComputeAgent(agentOptions, log, metrics);
metrics.Observe(agent);

await using var server = new GrpcServer(new GrpcServerOptions { GrpcEndpoint = listen, HttpEndpoint = http }, loggers);
new ComputeService(agent).MapTo(server);
ServiceLifetime.MapMetrics(server, metrics.Registry);
await server.StartAsync();
log.LogInformation("compute agent {VmId} idle, control API on {GrpcAddress}, HTTP on {HttpAddress}, PostgreSQL port {Port}, work dir {WorkDir}",
    vmId, server.GrpcAddress, server.HttpAddress, pgPort, workDir);
// Warm before announcing: the pool counts a VM as a spare once it is ready, and a failover onto a cold one pays the JIT.
await agent.WarmUpAsync(new Uri($"http://{server.GrpcAddress}"));
ServiceLifetime.AnnounceReady(server, $"pg={pgPort}");

await ServiceLifetime.WaitForShutdownAsync();
log.LogInformation("compute agent {VmId} shutting down", vmId);
await server.StopAsync();
return 0;
