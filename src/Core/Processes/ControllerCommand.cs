namespace Storage.Core.Processes;

/// <summary>How to start a storage controller process: its assembly and the options its Program.cs parses.</summary>
public static class ControllerCommand
{
    public const string AssemblyName = "Storage.StorageController";

    public static string Assembly => ServiceProcess.AssemblyBeside(AssemblyName);

    public static string[] Arguments(int grpcPort, int? httpPort, string dataDir, TimeSpan? heartbeat = null, TimeSpan? failureTimeout = null, string? logFormat = null)
    {
        var args = new List<string> { "--listen", $"127.0.0.1:{grpcPort}", "--data-dir", dataDir };
        if (httpPort is int http) args.AddRange(["--http", $"127.0.0.1:{http}"]);
        if (heartbeat is { } h) args.AddRange(["--heartbeat-ms", ((int)h.TotalMilliseconds).ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        if (failureTimeout is { } f) args.AddRange(["--failure-timeout-ms", ((int)f.TotalMilliseconds).ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        if (logFormat is not null) args.AddRange(["--log-format", logFormat]);
        return args.ToArray();
    }
}
