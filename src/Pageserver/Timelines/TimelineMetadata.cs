using System.Text.Json;
using System.Text.Json.Serialization;
using Storage.Core;
using Storage.Core.Storage;

namespace Storage.Pageserver.Timelines;

/// <summary>
/// What the pageserver persists about a timeline besides its layers. Ingest restarts from the
/// resume point: WAL bytes are fetched again from <see cref="WalFetchLsn"/> (a segment boundary,
/// everything before it is in finished segment layers) and decoding restarts at the record
/// boundary <see cref="DecodeFromLsn"/> (at or after it).
/// </summary>
public sealed record TimelineMetadata
{
    public required string TenantId { get; init; }
    public required string TimelineId { get; init; }
    public required ulong SystemIdentifier { get; init; }
    /// <summary>Where the timeline's own WAL begins (initdb's end, or the branch point).</summary>
    public required ulong StartLsn { get; init; }
    public string? AncestorTimelineId { get; init; }
    public ulong AncestorLsn { get; init; }
    public required ulong WalFetchLsn { get; init; }
    public required ulong DecodeFromLsn { get; init; }
    public required ulong DecodePrevLsn { get; init; }
    /// <summary>Object storage holds the timeline's layers up to here.</summary>
    public ulong RemoteConsistentLsn { get; init; }
    public ulong Generation { get; init; }

    [JsonIgnore] public Lsn Start => new(StartLsn);
    [JsonIgnore] public Lsn WalFetch => new(WalFetchLsn);
    [JsonIgnore] public Lsn DecodeFrom => new(DecodeFromLsn);
    [JsonIgnore] public Lsn DecodePrev => new(DecodePrevLsn);
    [JsonIgnore] public Lsn RemoteConsistent => new(RemoteConsistentLsn);

    private const string Magic = "PSTL";
    internal static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    public void Save(string path) => ChecksummedFile.Write(path, Magic, 1, JsonSerializer.SerializeToUtf8Bytes(this, Json));

    public static TimelineMetadata Load(string path) =>
        JsonSerializer.Deserialize<TimelineMetadata>(ChecksummedFile.Read(path, Magic).Payload, Json)
        ?? throw new CorruptFileException(path, "empty timeline metadata");
}
