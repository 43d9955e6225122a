using System.Net;
using Storage.Core.Hosting;
using Storage.Core.Observability;

namespace Storage.Core.Processes;

/// <summary>
/// The compute proxy process's options (the PostgreSQL proxy, its control plane and VM pool):
/// parsed by its Program from the command line, built by its launchers (storagectl, tests).
/// </summary>
public sealed record ComputeProxyOptions : IValidatedOptions
{
    [Flag("--listen", "where PostgreSQL clients connect, HOST:PORT")]
    public IPEndPoint Listen { get; init; } = new(IPAddress.Loopback, 55432);

    [Flag("--admin", "the control plane's HTTP admin API and /metrics, HOST:PORT")]
    public IPEndPoint Admin { get; init; } = new(IPAddress.Loopback, 7000);

    [Flag("--data-dir", "the endpoint registry, the VM list and the VMs' work directories")]
    public string DataDir { get; init; } = ".storage/controlplane";

    [Flag("--safekeepers", "the safekeepers' gRPC addresses every attach is given, URL,...")]
    public IReadOnlyList<Uri> Safekeepers { get; init; } = [];

    [Flag("--pageservers", "the pageservers' gRPC addresses basebackups come from, URL,...")]
    public IReadOnlyList<Uri> Pageservers { get; init; } = [];

    [Flag("--controller", "the storage controller's gRPC address (which pageserver serves each timeline's basebackups)")]
    public Uri? Controller { get; init; }

    [Flag("--pool-size", "compute VMs kept running, attached or idle")]
    public int PoolSize { get; init; } = 2;

    [FlagGroup]
    public AuthOptions Auth { get; init; } = new();

    [Flag("--auth-signing-key", "PEM file (0600) of the cluster's private key: each attach's tenant-bound compute token is minted with it")]
    public string? SigningKeyFile { get; init; }

    [Flag("--external-vms", "control API addresses of compute agents that run elsewhere (VM containers), URL,...: the pool is these instead of processes it starts (--pool-size is then ignored)")]
    public IReadOnlyList<Uri> ExternalVms { get; init; } = [];

    [Flag("--default-endpoint", "the endpoint of a connection that names none (none: such connections are refused)")]
    public string? DefaultEndpoint { get; init; }

    [Flag("--heartbeat-ms", "how often every VM is heartbeated (and idle endpoints checked for suspension)")]
    public int HeartbeatMs { get; init; } = 500;

    [Flag("--prepare-interval-ms", "how often idle VMs are prepared with the attached timelines' newest images (0: never)")]
    public int PrepareIntervalMs { get; init; } = 2000;

    [Flag("--tls-cert", "TLS certificate for clients: .pfx/.p12, or PEM (key in the same file or --tls-key); none: no TLS")]
    public string? TlsCert { get; init; }

    [Flag("--tls-key", "the PEM key of --tls-cert")]
    public string? TlsKey { get; init; }

    [Flag("--sni-domain", "only SNI names under this domain route by their first label")]
    public string? SniDomain { get; init; }

    [Flag("--log-format", "json or text")]
    public string LogFormat { get; init; } = "json";

    public string DataDirectory => Path.GetFullPath(DataDir);

    public IEnumerable<string> Validate()
    {
        if (Safekeepers.Count == 0) yield return "--safekeepers is needed: every attach elects on them";
        if (Pageservers.Count == 0 && Controller is null) yield return "--pageservers or --controller is needed: basebackups come from a pageserver";
        foreach (var (flag, uri) in Safekeepers.Select(u => ("--safekeepers", u)).Concat(Pageservers.Select(u => ("--pageservers", u)))
                     .Concat(Controller is null ? [] : [("--controller", Controller)]))
            if (uri.Scheme is not ("http" or "https")) yield return $"{flag}: '{uri}' is not an http:// gRPC address";
        if (PoolSize < 1) yield return "--pool-size must be at least 1";
        if (SigningKeyFile is null) yield return "--auth-signing-key is required: every attach carries a compute token signed with it (storagectl up makes the key)";
        foreach (var problem in Auth.Validate()) yield return problem;
        if (HeartbeatMs <= 0) yield return "--heartbeat-ms must be positive";
        if (PrepareIntervalMs < 0) yield return "--prepare-interval-ms must not be negative";
        if (TlsKey is not null && TlsCert is null) yield return "--tls-key needs --tls-cert";
        if (Admin.Port != 0 && Admin.Equals(Listen)) yield return "--admin and --listen must differ";
        if (Logging.FormatProblem(LogFormat) is { } logFormat) yield return logFormat;
    }
}

/// <summary>How to start the compute proxy process (the proxy with its control plane and VM pool), from <see cref="ComputeProxyOptions"/>.</summary>
public static class ProxyCommand
{
    public const string AssemblyName = "Storage.ComputeProxy";

    public static string Assembly => ServiceProcess.AssemblyBeside(AssemblyName);

    public static string[] Arguments(ComputeProxyOptions options) => ServiceOptions.ToArguments(options);

    /// <param name="extra">More options as text, e.g. --default-endpoint main, --heartbeat-ms 200.</param>
    public static string[] Arguments(int pgPort, int adminPort, string dataDir, IEnumerable<Uri> safekeepers, IEnumerable<Uri> pageservers,
        int poolSize, string? logFormat = null, IEnumerable<string>? extra = null) =>
        [.. Arguments(new ComputeProxyOptions
        {
            Listen = new IPEndPoint(IPAddress.Loopback, pgPort),
            Admin = new IPEndPoint(IPAddress.Loopback, adminPort),
            DataDir = dataDir,
            Safekeepers = safekeepers.ToList(),
            Pageservers = pageservers.ToList(),
            PoolSize = poolSize,
            LogFormat = logFormat ?? "json",
        }), .. extra ?? []];
}
