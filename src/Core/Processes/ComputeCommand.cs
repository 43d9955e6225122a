namespace Storage.Core.Processes;

/// <summary>How to start a compute agent (one pooled VM): its assembly and the options its Program.cs parses.</summary>
public static class ComputeCommand
{
    public const string AssemblyName = "Storage.Compute";

    /// <summary>The compute agent assembly deployed next to the running program.</summary>
    public static string Assembly => ServiceProcess.AssemblyBeside(AssemblyName);

    public static string[] Arguments(string vmId, int grpcPort, int? httpPort, string workDir, int postgresPort, string? logFormat = null,
        IEnumerable<string>? extra = null)
    {
        var args = new List<string> { "--id", vmId, "--listen", $"127.0.0.1:{grpcPort}", "--work-dir", workDir, "--pg-port", postgresPort.ToString() };
        if (httpPort is int http) args.AddRange(["--http", $"127.0.0.1:{http}"]);
        if (logFormat is not null) args.AddRange(["--log-format", logFormat]);
        args.AddRange(extra ?? []);
        return args.ToArray();
    }
}
