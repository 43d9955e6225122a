using Storage.Core.Auth;
using Storage.Core.Rpc;
using System.Globalization;
using System.Net;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using Storage.ComputeProxy.ControlPlane;
using Storage.ComputeProxy.Proxy;
using Storage.Core.Observability;
using Storage.Core.Processes;

// The compute proxy and its control plane, one stateless-by-design process (its endpoint registry
// and VM list are persisted in the data directory). Options:
// --listen HOST:PORT (PostgreSQL clients, default 127.0.0.1:55432) --admin HOST:PORT (HTTP admin API
// and /metrics, default 127.0.0.1:7000) --data-dir DIR --safekeepers URL,... --pageservers URL,...
// --controller URL (the storage controller: which pageserver serves each timeline's basebackups)
// --pool-size N (2) --default-endpoint ID --heartbeat-ms N (500) --tls-cert FILE [--tls-key FILE]
// --sni-domain NAME --log-format json|text --prepare-interval-ms N (2000; 0: idle VMs are not
// prepared with the attached timelines' newest images) --external-vms URL,... (compute agents that run
// elsewhere, e.g. VM containers, by their control API address: the pool is these instead of processes
// it starts; --pool-size is then ignored) --auth-signing-key FILE (the cluster's private key: each
// attach's compute token is minted with it) --token-file FILE (the control plane's own token)
// Socket completions run on the epoll threads instead of being handed to a thread-pool worker:
// a relayed message then costs no thread wake-up. Measured with pgbench -S through the proxy on two
// cores: proxy CPU per transaction 41-47 us -> 25-27 us. Read once, at the first socket use, so it
// is set before anything else; VMs started from here get it switched off again (ServiceProcess).
Environment.SetEnvironmentVariable(ServiceProcess.InlineSocketCompletions, "1");
var config = new ConfigurationBuilder().AddCommandLine(args).Build();
static IReadOnlyList<Uri> Uris(string? list) =>
    (list ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(s => new Uri(s)).ToList();

using var loggers = Logging.CreateFactory(config["log-format"]);
var log = loggers.CreateLogger("Storage.ComputeProxy");
var metrics = new MetricsRegistry();
// Tokens: the control plane's own (calls to the storage controller) and the signing key it mints
// each attach's tenant-bound compute token with.
if (config["token-file"] is { Length: > 0 } tokenFile) GrpcChannels.DefaultToken = SecretFile.Read(tokenFile);
var signingKey = config["auth-signing-key"] ?? throw new ArgumentException("--auth-signing-key is required: every attach carries a compute token signed with it (storagectl up makes the key)");
var controlPlaneOptions = new ControlPlaneOptions
{
    ComputeTokens = ComputeTokens.FromKeyFile(signingKey),
    DataDirectory = Path.GetFullPath(config["data-dir"] ?? ".storage/controlplane"),
    Safekeepers = Uris(config["safekeepers"]),
    Pageservers = Uris(config["pageservers"]),
    Controller = config["controller"] is { Length: > 0 } controller ? new Uri(controller) : null,
    PoolSize = int.Parse(config["pool-size"] ?? "2", CultureInfo.InvariantCulture),
    ExternalVms = Uris(config["external-vms"]),
    HeartbeatInterval = TimeSpan.FromMilliseconds(int.Parse(config["heartbeat-ms"] ?? "500", CultureInfo.InvariantCulture)),
    PrepareInterval = TimeSpan.FromMilliseconds(int.Parse(config["prepare-interval-ms"] ?? "2000", CultureInfo.InvariantCulture)),
    AdminEndpoint = IPEndPoint.Parse(config["admin"] ?? "127.0.0.1:7000"),
};
await using var controlPlane = new ControlPlane(controlPlaneOptions, loggers, metrics);
await controlPlane.StartAsync();

await using var proxy = new ProxyServer(new ProxyOptions
{
    Listen = IPEndPoint.Parse(config["listen"] ?? "127.0.0.1:55432"),
    DefaultEndpoint = config["default-endpoint"],
    TlsCertificatePath = config["tls-cert"],
    TlsKeyPath = config["tls-key"],
    SniDomain = config["sni-domain"],
}, controlPlane.Locator, metrics, loggers);
proxy.Start();
log.LogInformation("compute proxy serving PostgreSQL on {Listen}, admin API on {Admin}, VM pool of {PoolSize}",
    proxy.LocalEndPoint, controlPlane.AdminUri, controlPlaneOptions.PoolSize);
Console.Out.WriteLine($"READY pg={proxy.LocalEndPoint} admin={controlPlane.AdminUri}");
Console.Out.Flush();

await ServiceLifetime.WaitForShutdownAsync();
log.LogInformation("compute proxy shutting down; the VM pool stops with it");
await proxy.StopAsync();
await controlPlane.StopAsync();
return 0;
