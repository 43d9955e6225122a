using Storage.Core.Postgres;

namespace Storage.Pageserver;

/// <summary>How a pageserver runs (command-line options of the process).</summary>
public sealed record PageserverOptions
{
    public required string NodeId { get; init; }
    public required string DataDirectory { get; init; }
    public required PostgresBinaries Binaries { get; init; }
    /// <summary>The safekeepers timelines stream WAL from.</summary>
    public IReadOnlyList<Uri> Safekeepers { get; init; } = [];
    /// <summary>Take an image once this much WAL came since the last one's redo point (a basebackup's replay)...</summary>
    public long ImageAfterBytes { get; init; } = 64L << 20;
    /// <summary>...or after this long, if any WAL came since.</summary>
    public TimeSpan ImageAfter { get; init; } = TimeSpan.FromMinutes(5);
    /// <summary>Basebackups stay possible at any LSN this far back.</summary>
    public TimeSpan Retention { get; init; } = TimeSpan.FromDays(7);
    public TimeSpan HousekeepingInterval { get; init; } = TimeSpan.FromSeconds(1);
    /// <summary>Longest a basebackup waits for its LSN to be ingested, unless the request says.</summary>
    public TimeSpan BasebackupWait { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>Switch safekeeper when the source sends nothing this long while another has newer WAL.</summary>
    public TimeSpan StallTimeout { get; init; } = TimeSpan.FromSeconds(3);
    /// <summary>
    /// The storage controller: with one, the pageserver registers at start and holds only the
    /// timelines the controller places on it, attached under the generation it issues.
    /// </summary>
    public Uri? Controller { get; init; }
    /// <summary>This pageserver's gRPC address as others reach it (registered with the controller).</summary>
    public Uri? AdvertisedAddress { get; init; }
    /// <summary>How often a secondary downloads what the newest manifest added.</summary>
    public TimeSpan SecondaryRefresh { get; init; } = TimeSpan.FromSeconds(2);
    /// <summary>False: no replay instance and no images beyond the first (for ingest-only uses).</summary>
    public bool ReplayEnabled { get; init; } = true;
}
