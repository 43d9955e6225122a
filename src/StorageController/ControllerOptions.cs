namespace Storage.StorageController;

/// <summary>How the storage controller runs (command-line options of the process).</summary>
public sealed record ControllerOptions
{
    public required string DataDirectory { get; init; }
    /// <summary>How often each pageserver is asked whether it lives.</summary>
    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromMilliseconds(500);
    /// <summary>A pageserver that refuses connections (its process is gone) and has not answered this long is offline: its timelines fail over.</summary>
    public TimeSpan FailureTimeout { get; init; } = TimeSpan.FromSeconds(2);
    /// <summary>
    /// A pageserver whose heartbeats time out (a hung process, a starved machine, a host cut off) is
    /// offline only after this long: a slow answer is weaker evidence than a refused connection.
    /// </summary>
    public TimeSpan UnresponsiveTimeout { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>Longest a pageserver may take to attach a promoted timeline.</summary>
    public TimeSpan AttachTimeout { get; init; } = TimeSpan.FromSeconds(60);
}
