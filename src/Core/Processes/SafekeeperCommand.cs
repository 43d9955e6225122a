using System.Net;
using Storage.Core.Hosting;

namespace Storage.Core.Processes;

/// <summary>A safekeeper's options: parsed by its Program from the command line, built by its launchers (storagectl, tests, benchmarks).</summary>
public sealed record SafekeeperOptions : IValidatedOptions
{
    [Flag("--id", "node id (1, 2, 3, ...)")]
    public ulong Id { get; init; } = 1;

    [FlagGroup]
    public ServiceListenOptions Service { get; init; } = new() { Listen = new IPEndPoint(IPAddress.Loopback, 7671) };

    /// <summary>Callers' tokens are checked with this key (the replication port needs it).</summary>
    [FlagGroup]
    public AuthOptions Auth { get; init; } = new();

    [Flag("--pg-listen", "serve PostgreSQL's physical replication protocol here (standbys, pg_receivewal); needs --auth-public-key")]
    public IPEndPoint? PgListen { get; init; }

    [Flag("--data-dir", "where timelines live (default .storage/sk<id>)")]
    public string? DataDir { get; init; }

    [Flag("--az", "the availability zone label")]
    public string AvailabilityZone { get; init; } = "az-a";

    /// <summary>WAL offload goes here (off when none is given).</summary>
    [FlagGroup]
    public ObjectStoreOptions ObjectStore { get; init; } = new();

    [Flag("--offload-interval-ms", "how often finished WAL segments are offloaded")]
    public int OffloadIntervalMs { get; init; } = 1000;

    [Flag("--offload-lease-seconds", "how long one safekeeper holds a timeline's offload lease")]
    public int OffloadLeaseSeconds { get; init; } = 10;

    [Flag("--trim-interval-ms", "how often WAL below min(remote_consistent_lsn, backup_lsn, commit_lsn) is deleted")]
    public int TrimIntervalMs { get; init; } = 1000;

    public string DataDirectory => Path.GetFullPath(DataDir ?? $".storage/sk{Id}");

    public IEnumerable<string> Validate()
    {
        if (Id == 0) yield return "--id must be at least 1";
        if (OffloadIntervalMs <= 0 || OffloadLeaseSeconds <= 0 || TrimIntervalMs <= 0) yield return "intervals must be positive";
        foreach (var problem in Service.Validate().Concat(ObjectStore.Validate()).Concat(Auth.Validate())) yield return problem;
    }
}

/// <summary>How to start a safekeeper process: its assembly and arguments, from <see cref="SafekeeperOptions"/>.</summary>
public static class SafekeeperCommand
{
    public const string AssemblyName = "Storage.Safekeeper";

    /// <summary>The safekeeper assembly deployed next to the running program.</summary>
    public static string Assembly => ServiceProcess.AssemblyBeside(AssemblyName);

    public static string[] Arguments(SafekeeperOptions options) => ServiceOptions.ToArguments(options);

    /// <summary>A safekeeper on loopback ports; <paramref name="extra"/> are more flags as text (e.g. --remote-storage DIR).</summary>
    public static string[] Arguments(ulong id, int grpcPort, int? httpPort, string dataDir, string availabilityZone, string? logFormat = null,
        IEnumerable<string>? extra = null) =>
        [.. Arguments(new SafekeeperOptions
        {
            Id = id,
            Service = ServiceListenOptions.OnLoopback(grpcPort, httpPort, logFormat),
            DataDir = dataDir,
            AvailabilityZone = availabilityZone,
        }), .. extra ?? []];
}
