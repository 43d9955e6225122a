namespace Storage.Core.Processes;

/// <summary>How to start the compute proxy process (the proxy with its control plane and VM pool).</summary>
public static class ProxyCommand
{
    public const string AssemblyName = "Storage.ComputeProxy";

    public static string Assembly => ServiceProcess.AssemblyBeside(AssemblyName);

    /// <param name="extra">More options, e.g. --default-endpoint main, --heartbeat-ms 200.</param>
    public static string[] Arguments(int pgPort, int adminPort, string dataDir, IEnumerable<Uri> safekeepers, IEnumerable<Uri> pageservers,
        int poolSize, string? logFormat = null, IEnumerable<string>? extra = null)
    {
        static string List(IEnumerable<Uri> uris) => string.Join(',', uris.Select(u => u.ToString().TrimEnd('/')));
        var args = new List<string>
        {
            "--listen", $"127.0.0.1:{pgPort}", "--admin", $"127.0.0.1:{adminPort}", "--data-dir", dataDir,
            "--safekeepers", List(safekeepers), "--pageservers", List(pageservers), "--pool-size", poolSize.ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
        if (extra is not null) args.AddRange(extra);
        if (logFormat is not null) args.AddRange(["--log-format", logFormat]);
        return args.ToArray();
    }
}
