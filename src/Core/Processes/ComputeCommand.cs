using System.Net;
using Storage.Core.Hosting;

namespace Storage.Core.Processes;

/// <summary>A compute agent's options (one pooled VM): parsed by its Program from the command line, built by its launchers (the VM pool, tests).</summary>
public sealed record ComputeOptions : IValidatedOptions
{
    [Flag("--id", "the VM's name")]
    public string Id { get; init; } = "vm1";

    [FlagGroup]
    public ServiceListenOptions Service { get; init; } = new() { Listen = new IPEndPoint(IPAddress.Loopback, 7691) };

    /// <summary>The public key only: the agent's calls carry each attach's compute token.</summary>
    [FlagGroup]
    public AuthOptions Auth { get; init; } = new();

    [Flag("--work-dir", "where the VM keeps its things (default .storage/<id>)")]
    public string? WorkDir { get; init; }

    [Flag("--pg-port", "PostgreSQL's port (default: a free port)")]
    public int? PostgresPort { get; init; }

    [Flag("--pg-listen", "PostgreSQL's listen_addresses; another than 127.0.0.1 (a VM container: \"*\") also lets the hosts of its networks log in with SCRAM")]
    public string PostgresListen { get; init; } = "127.0.0.1";

    [Flag("--max-retained-wal-mb", "pg_wal kept below the commit LSN for a lagging safekeeper, in MiB")]
    public long MaxRetainedWalMb { get; init; } = 1024;

    public string WorkDirectory => Path.GetFullPath(WorkDir ?? $".storage/{Id}");

    public IEnumerable<string> Validate()
    {
        if (Id.Length == 0 || Id.IndexOfAny(['/', '\\']) >= 0 || Id is "." or "..") yield return $"--id must be a plain name, not '{Id}'";
        if (PostgresPort is < 1 or > 65535) yield return $"--pg-port must be a TCP port (1-65535), not {PostgresPort}";
        if (MaxRetainedWalMb < 0) yield return "--max-retained-wal-mb must not be negative";
        foreach (var problem in Service.Validate().Concat(Auth.Validate())) yield return problem;
    }
}

/// <summary>How to start a compute agent (one pooled VM): its assembly and arguments, from <see cref="ComputeOptions"/>.</summary>
public static class ComputeCommand
{
    public const string AssemblyName = "Storage.Compute";

    /// <summary>The compute agent assembly deployed next to the running program.</summary>
    public static string Assembly => ServiceProcess.AssemblyBeside(AssemblyName);

    public static string[] Arguments(ComputeOptions options) => ServiceOptions.ToArguments(options);

    /// <summary>An agent on loopback ports; <paramref name="extra"/> are more flags as text (e.g. --max-retained-wal-mb 64).</summary>
    public static string[] Arguments(string vmId, int grpcPort, int? httpPort, string workDir, int postgresPort, string? logFormat = null,
        IEnumerable<string>? extra = null) =>
        [.. Arguments(new ComputeOptions
        {
            Id = vmId,
            Service = ServiceListenOptions.OnLoopback(grpcPort, httpPort, logFormat),
            WorkDir = workDir,
            PostgresPort = postgresPort,
        }), .. extra ?? []];
}
