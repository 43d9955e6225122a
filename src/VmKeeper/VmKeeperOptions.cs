using System.Net;
using Storage.Core.Hosting;
using Storage.Core.Observability;

namespace Storage.VmKeeper;

/// <summary>The VM keeper's options, parsed from its command line (docker-compose.yml's <c>vmkeeper</c> service).</summary>
public sealed record VmKeeperOptions : IValidatedOptions
{
    [Flag("--http", "HTTP address for /metrics, HOST:PORT")]
    public IPEndPoint Http { get; init; } = new(IPAddress.Loopback, 7693);

    [Flag("--docker-socket", "the Docker Engine's API socket")]
    public string DockerSocket { get; init; } = "/var/run/docker.sock";

    [Flag("--pool-label", "the label KEY=VALUE every pool VM container carries")]
    public string PoolLabel { get; init; } = "storage.pool=vm";

    [Flag("--project", "the compose project whose VM containers are kept (none: this container's own project)")]
    public string? Project { get; init; }

    [Flag("--interval-ms", "how often the pool's containers are checked")]
    public int IntervalMs { get; init; } = 1000;

    [Flag("--log-format", "json or text")]
    public string LogFormat { get; init; } = "json";

    public IEnumerable<string> Validate()
    {
        if (!PoolLabel.Contains('=') || PoolLabel.StartsWith('=')) yield return $"--pool-label must be KEY=VALUE, not '{PoolLabel}'";
        if (Project is "") yield return "--project must not be empty";
        if (IntervalMs <= 0) yield return "--interval-ms must be positive";
        if (Logging.FormatProblem(LogFormat) is { } logFormat) yield return logFormat;
    }
}
