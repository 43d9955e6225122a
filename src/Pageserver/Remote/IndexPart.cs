using System.Globalization;
using Storage.Pageserver.Images;
using Storage.Pageserver.Timelines;

namespace Storage.Pageserver.Remote;

/// <summary>
/// A file uploaded for a timeline, under the generation of the pageserver that wrote it. A WAL
/// segment uploaded before it was finished (a timeline's first, partial one) is not sealed.
/// </summary>
public sealed record RemoteLayer(string Name, ulong Generation, long Size, uint Crc32C, bool Sealed = true);

/// <summary>
/// The manifest of a timeline in object storage: the metadata to resume ingest from and every
/// layer that belongs to it. Each writer publishes its own <c>index_part.json-GGGGGGGG</c>; the one
/// with the highest generation is the truth (ARCHITECTURE.md invariant 5).
/// </summary>
public sealed record IndexPart(ulong Generation, TimelineMetadata Metadata, IReadOnlyList<RemoteLayer> Layers, IReadOnlyList<ImageLayer> Images);

/// <summary>Object keys of a timeline's pageserver data.</summary>
public static class RemoteKeys
{
    public const string IndexPartPrefix = "index_part.json-";

    public static string Timeline(string tenantId, string timelineId) => $"tenants/{tenantId}/timelines/{timelineId}/pageserver/";
    public static string IndexPart(string tenantId, string timelineId, ulong generation) =>
        Timeline(tenantId, timelineId) + IndexPartPrefix + generation.ToString("X8", CultureInfo.InvariantCulture);
    public static string Layer(string tenantId, string timelineId, string name, ulong generation) =>
        Timeline(tenantId, timelineId) + "layers/" + name + "-" + generation.ToString("X8", CultureInfo.InvariantCulture);

    /// <summary>The generation in an index_part key, or null if the key is not one.</summary>
    public static ulong? GenerationOf(string key)
    {
        var at = key.LastIndexOf(IndexPartPrefix, StringComparison.Ordinal);
        if (at < 0) return null;
        return ulong.TryParse(key.AsSpan(at + IndexPartPrefix.Length), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var g) ? g : null;
    }

    /// <summary>(tenant, timeline) of a key under <c>tenants/T/timelines/L/pageserver/</c>, or null.</summary>
    public static (string Tenant, string Timeline)? TimelineOf(string key)
    {
        var parts = key.Split('/');
        return parts.Length >= 5 && parts[0] == "tenants" && parts[2] == "timelines" && parts[4] == "pageserver" ? (parts[1], parts[3]) : null;
    }
}
