using System.Net;
using Storage.Core.Hosting;

namespace Storage.Core.Processes;

/// <summary>A pageserver's options: parsed by its Program from the command line, built by its launchers (storagectl, tests, benchmarks).</summary>
public sealed record PageserverOptions : IValidatedOptions
{
    [Flag("--id", "node name (ps1, ps2, ...)")]
    public string Id { get; init; } = "ps1";

    [FlagGroup]
    public ServiceListenOptions Service { get; init; } = new() { Listen = new IPEndPoint(IPAddress.Loopback, 9891) };

    [FlagGroup]
    public AuthOptions Auth { get; init; } = new();

    [Flag("--data-dir", "where timelines live (default .storage/<id>)")]
    public string? DataDir { get; init; }

    [Flag("--safekeepers", "the safekeepers timelines stream WAL from, URL,URL,...")]
    public IReadOnlyList<Uri> Safekeepers { get; init; } = [];

    /// <summary>The durable copy of every timeline (none when not given).</summary>
    [FlagGroup]
    public ObjectStoreOptions ObjectStore { get; init; } = new();

    [Flag("--image-after-mb", "take an image once this much WAL came since the last one's redo point (a basebackup's replay)")]
    public long ImageAfterMb { get; init; } = 64;

    [Flag("--image-after-seconds", "...or after this long, if any WAL came since")]
    public double ImageAfterSeconds { get; init; } = 300;

    [Flag("--retention-seconds", "basebackups stay possible at any LSN this far back")]
    public double RetentionSeconds { get; init; } = 7 * 24 * 3600;

    [Flag("--replay", "false: no replay instance and no images beyond the first (ingest only)")]
    public bool Replay { get; init; } = true;

    [Flag("--controller", "the storage controller: register at start, hold only the timelines it places here, under its generations")]
    public Uri? Controller { get; init; }

    [Flag("--advertise", "the gRPC address others reach this pageserver at, registered with the controller (default http://<--listen>)")]
    public Uri? Advertise { get; init; }

    [Flag("--secondary-refresh-ms", "how often a secondary downloads what the newest manifest added")]
    public double SecondaryRefreshMs { get; init; } = 2000;

    // Not flags: fixed for the process, set by tests that run a pageserver's parts in-process.

    /// <summary>How often a timeline's housekeeping (images, uploads, feedback, retention) runs.</summary>
    public TimeSpan HousekeepingInterval { get; init; } = TimeSpan.FromSeconds(1);
    /// <summary>Longest a basebackup waits for its LSN to be ingested, unless the request says.</summary>
    public TimeSpan BasebackupWait { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>Switch safekeeper when the source sends nothing this long while another has newer WAL.</summary>
    public TimeSpan StallTimeout { get; init; } = TimeSpan.FromSeconds(3);

    public string DataDirectory => Path.GetFullPath(DataDir ?? $".storage/{Id}");
    public long ImageAfterBytes => ImageAfterMb << 20;
    public TimeSpan ImageAfter => TimeSpan.FromSeconds(ImageAfterSeconds);
    public TimeSpan Retention => TimeSpan.FromSeconds(RetentionSeconds);
    public TimeSpan SecondaryRefresh => TimeSpan.FromMilliseconds(SecondaryRefreshMs);
    /// <summary>This pageserver's gRPC address as others reach it (set --advertise when listening on 0.0.0.0).</summary>
    public Uri AdvertisedAddress => Advertise ?? new Uri($"http://{Service.Listen}");

    public IEnumerable<string> Validate()
    {
        if (string.IsNullOrWhiteSpace(Id)) yield return "--id must not be empty";
        if (ImageAfterMb <= 0) yield return "--image-after-mb must be positive";
        if (ImageAfterSeconds <= 0 || RetentionSeconds <= 0 || SecondaryRefreshMs <= 0)
            yield return "--image-after-seconds, --retention-seconds and --secondary-refresh-ms must be positive";
        foreach (var problem in Service.Validate().Concat(ObjectStore.Validate()).Concat(Auth.Validate())) yield return problem;
    }
}

/// <summary>How to start a pageserver process: its assembly and arguments, from <see cref="PageserverOptions"/>.</summary>
public static class PageserverCommand
{
    public const string AssemblyName = "Storage.Pageserver";

    public static string Assembly => ServiceProcess.AssemblyBeside(AssemblyName);

    public static string[] Arguments(PageserverOptions options) => ServiceOptions.ToArguments(options);

    /// <summary>A pageserver on loopback ports; <paramref name="extra"/> are more flags as text (e.g. --remote-storage DIR, --image-after-mb N).</summary>
    public static string[] Arguments(string id, int grpcPort, int? httpPort, string dataDir, IEnumerable<Uri> safekeepers,
        string? logFormat = null, IEnumerable<string>? extra = null) =>
        [.. Arguments(new PageserverOptions
        {
            Id = id,
            Service = ServiceListenOptions.OnLoopback(grpcPort, httpPort, logFormat),
            DataDir = dataDir,
            Safekeepers = safekeepers.ToList(),
        }), .. extra ?? []];
}
