using Storage.Core.Auth;
using Storage.Core.Rpc;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Prometheus;
using Storage.ComputeProxy.ControlPlane;
using Storage.ComputeProxy.Proxy;
using Storage.Core.Hosting;
using Storage.Core.Observability;
using Storage.Core.Processes;

// The compute proxy and its control plane, one stateless-by-design process (its endpoint registry
// and VM list are persisted in the data directory): the PostgreSQL proxy on --listen, the admin
// API and /metrics on --admin. `--help` lists the options.
// Socket completions run on the epoll threads instead of being handed to a thread-pool worker:
// a relayed message then costs no thread wake-up. Measured with pgbench -S through the proxy on two
// cores: proxy CPU per transaction 41-47 us -> 25-27 us. Read once, at the first socket use, so it
// is set before anything else; VMs started from here get it switched off again (ServiceProcess).
Environment.SetEnvironmentVariable(ServiceProcess.InlineSocketCompletions, "1");
var parsed = ServiceOptions.Parse<ComputeProxyOptions>(args, "compute proxy: the PostgreSQL proxy, its control plane and the pool of compute VMs");
if (parsed.Options is not { } options) return parsed.ExitCode;

using var loggers = Logging.CreateFactory(options.LogFormat);
var log = loggers.CreateLogger("Storage.ComputeProxy");
var registry = Metrics.NewCustomRegistry(); // one /metrics for the proxy and its control plane
// Tokens: the control plane's own (calls to the storage controller and the agents), and the
// signing key it mints each attach's tenant-bound compute token with.
GrpcChannels.DefaultToken = options.Auth.Token();
var controlPlaneOptions = new ControlPlaneOptions
{
    ComputeTokens = ComputeTokens.FromKeyFile(options.SigningKeyFile!),
    PublicKeyFile = options.Auth.PublicKeyFile,
    DataDirectory = options.DataDirectory,
    Safekeepers = options.Safekeepers,
    Pageservers = options.Pageservers,
    Controller = options.Controller,
    PoolSize = options.PoolSize,
    ExternalVms = options.ExternalVms,
    HeartbeatInterval = TimeSpan.FromMilliseconds(options.HeartbeatMs),
    PrepareInterval = TimeSpan.FromMilliseconds(options.PrepareIntervalMs),
};
await using var controlPlane = new ControlPlane(controlPlaneOptions, loggers, registry, TimeProvider.System);
await using var proxy = new ProxyServer(new ProxyOptions
{
    Listen = options.Listen,
    DefaultEndpoint = options.DefaultEndpoint,
    TlsCertificatePath = options.TlsCert,
    TlsKeyPath = options.TlsKey,
    SniDomain = options.SniDomain,
}, controlPlane.Locator, new ProxyMetrics(registry), loggers);

var builder = ServiceHost.CreateHttpBuilder(options.Admin, options.LogFormat);
// Stopping lets every VM stop its PostgreSQL cleanly (ControlPlane.StopAsync), which takes longer than a service's usual grace.
builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(30));
// Started in this order, stopped in the reverse: the proxy stops relaying before the VMs go. As
// instances, the host does not dispose them; the await using above does, after the host stopped.
builder.Services.AddSingleton<IHostedService>(controlPlane);
builder.Services.AddSingleton<IHostedService>(proxy);
await using var app = builder.Build();
AdminApi.Map(app, controlPlane, options.Auth.Validator());
var bound = app.Services.GetRequiredService<BoundEndpoints>();
await ServiceHost.RunAsync(app, readyExtra: () =>
{
    log.LogInformation("compute proxy serving PostgreSQL on {Listen}, admin API on {Admin}, VM pool of {PoolSize}",
        proxy.LocalEndPoint, bound.Http, options.PoolSize);
    return $"pg={proxy.LocalEndPoint} admin=http://{bound.Http}/";
});
log.LogInformation("compute proxy shut down; its VM pool stopped with it");
return 0;
