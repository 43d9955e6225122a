using System.Net;
using Storage.Core.Hosting;
using Storage.Core.Observability;

namespace Storage.Core.Processes;

/// <summary>The flags every service has: where it listens and how it logs.</summary>
public sealed record ServiceListenOptions
{
    [Flag("--listen", "gRPC address, HOST:PORT")]
    public IPEndPoint Listen { get; init; } = new(IPAddress.Loopback, 0);

    [Flag("--http", "HTTP address for /metrics, HOST:PORT (none when not given)")]
    public IPEndPoint? Http { get; init; }

    [Flag("--log-format", "json or text")]
    public string LogFormat { get; init; } = "json";

    public ServiceEndpoints Endpoints => new(Listen, Http);

    public IEnumerable<string> Validate()
    {
        if (Logging.FormatProblem(LogFormat) is { } logFormat) yield return logFormat;
        if (Http is not null && Http.Port != 0 && Http.Equals(Listen)) yield return "--http and --listen must differ";
    }

    /// <summary>Loopback addresses on the given ports.</summary>
    public static ServiceListenOptions OnLoopback(int grpcPort, int? httpPort, string? logFormat = null) => new()
    {
        Listen = new IPEndPoint(IPAddress.Loopback, grpcPort),
        Http = httpPort is int http ? new IPEndPoint(IPAddress.Loopback, http) : null,
        LogFormat = logFormat ?? "json",
    };
}
