namespace Storage.Core.Processes;

/// <summary>
/// How to start a safekeeper process: its assembly and the options its Program.cs parses, written
/// once for every launcher (storagectl, tests, benchmarks).
/// </summary>
public static class SafekeeperCommand
{
    public const string AssemblyName = "Storage.Safekeeper";

    /// <summary>The safekeeper assembly deployed next to the running program.</summary>
    public static string Assembly => ServiceProcess.AssemblyBeside(AssemblyName);

    public static string[] Arguments(ulong id, int grpcPort, int? httpPort, string dataDir, string availabilityZone, string? logFormat = null,
        IEnumerable<string>? extra = null)
    {
        var args = new List<string> { "--id", id.ToString(), "--listen", $"127.0.0.1:{grpcPort}", "--data-dir", dataDir, "--az", availabilityZone };
        if (extra is not null) args.AddRange(extra); // e.g. --remote-storage DIR (WAL offload)
        if (httpPort is int http) args.AddRange(["--http", $"127.0.0.1:{http}"]);
        if (logFormat is not null) args.AddRange(["--log-format", logFormat]);
        return args.ToArray();
    }
}
