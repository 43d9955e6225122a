using System.Net;
using Storage.Core.Hosting;

namespace Storage.Core.Processes;

/// <summary>The storage controller's options: parsed by its Program from the command line, built by its launchers (storagectl, tests).</summary>
public sealed record ControllerOptions : IValidatedOptions
{
    public const string UnresponsiveBelowFailure = "--unresponsive-timeout-ms must be at least --failure-timeout-ms";

    [FlagGroup]
    public ServiceListenOptions Service { get; init; } = new() { Listen = new IPEndPoint(IPAddress.Loopback, 1234) };

    [FlagGroup]
    public AuthOptions Auth { get; init; } = new();

    [Flag("--data-dir", "where the placements and generations are kept")]
    public string DataDir { get; init; } = ".storage/controller";

    [Flag("--heartbeat-ms", "how often each pageserver is asked whether it lives (and placements reconciled)")]
    public int HeartbeatMs { get; init; } = 500;

    [Flag("--failure-timeout-ms", "a pageserver that refuses connections (its process is gone) this long is offline: its timelines fail over")]
    public int FailureTimeoutMs { get; init; } = 2000;

    [Flag("--unresponsive-timeout-ms", "a pageserver whose heartbeats time out (hung, starved, cut off) this long is offline: a slow answer is weaker evidence than a refusal")]
    public int UnresponsiveTimeoutMs { get; init; } = 10_000;

    /// <summary>Longest a pageserver may take to attach a promoted timeline (not a flag).</summary>
    public TimeSpan AttachTimeout { get; init; } = TimeSpan.FromSeconds(60);

    public string DataDirectory => Path.GetFullPath(DataDir);
    public TimeSpan HeartbeatInterval => TimeSpan.FromMilliseconds(HeartbeatMs);
    public TimeSpan FailureTimeout => TimeSpan.FromMilliseconds(FailureTimeoutMs);
    public TimeSpan UnresponsiveTimeout => TimeSpan.FromMilliseconds(UnresponsiveTimeoutMs);

    public IEnumerable<string> Validate()
    {
        if (HeartbeatMs <= 0 || FailureTimeoutMs <= 0 || UnresponsiveTimeoutMs <= 0)
            yield return "--heartbeat-ms, --failure-timeout-ms and --unresponsive-timeout-ms must be positive";
        if (UnresponsiveTimeoutMs < FailureTimeoutMs) yield return UnresponsiveBelowFailure;
        foreach (var problem in Service.Validate().Concat(Auth.Validate())) yield return problem;
    }
}

/// <summary>How to start a storage controller process: its assembly and arguments, from <see cref="ControllerOptions"/>.</summary>
public static class ControllerCommand
{
    public const string AssemblyName = "Storage.StorageController";

    public static string Assembly => ServiceProcess.AssemblyBeside(AssemblyName);

    public static string[] Arguments(ControllerOptions options) => ServiceOptions.ToArguments(options);

    /// <summary>A controller on loopback ports.</summary>
    public static string[] Arguments(int grpcPort, int? httpPort, string dataDir, TimeSpan? heartbeat = null, TimeSpan? failureTimeout = null, string? logFormat = null,
        AuthOptions? auth = null)
    {
        var options = new ControllerOptions { Service = ServiceListenOptions.OnLoopback(grpcPort, httpPort, logFormat), DataDir = dataDir, Auth = auth ?? new() };
        if (heartbeat is { } h) options = options with { HeartbeatMs = (int)h.TotalMilliseconds };
        if (failureTimeout is { } f) options = options with { FailureTimeoutMs = (int)f.TotalMilliseconds };
        return Arguments(options);
    }
}
