namespace Storage.Core.Processes;

/// <summary>How to start a pageserver process: its assembly and the options its Program.cs parses.</summary>
public static class PageserverCommand
{
    public const string AssemblyName = "Storage.Pageserver";

    public static string Assembly => ServiceProcess.AssemblyBeside(AssemblyName);

    /// <param name="extra">More options, e.g. --remote-storage DIR, --image-after-mb N.</param>
    public static string[] Arguments(string id, int grpcPort, int? httpPort, string dataDir, IEnumerable<Uri> safekeepers,
        string? logFormat = null, IEnumerable<string>? extra = null)
    {
        var args = new List<string> { "--id", id, "--listen", $"127.0.0.1:{grpcPort}", "--data-dir", dataDir,
            "--safekeepers", string.Join(',', safekeepers.Select(s => s.ToString().TrimEnd('/'))) };
        if (extra is not null) args.AddRange(extra);
        if (httpPort is int http) args.AddRange(["--http", $"127.0.0.1:{http}"]);
        if (logFormat is not null) args.AddRange(["--log-format", logFormat]);
        return args.ToArray();
    }
}
