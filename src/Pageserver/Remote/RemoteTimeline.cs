using System.Text.Json;
using Storage.Core.Errors;
using Storage.Core.Storage;
using Storage.ObjectStore;
using Storage.Pageserver.Timelines;

namespace Storage.Pageserver.Remote;

/// <summary>
/// One timeline's pageserver data in object storage: uploads layers under this pageserver's
/// generation, publishes index_part, downloads the newest manifest for an attach, and deletes
/// only what no newer generation can reference.
/// </summary>
internal sealed class RemoteTimeline(IObjectStore store, string tenantId, string timelineId, ulong generation,
    Func<CancellationToken, Task<bool>>? generationIsCurrent = null)
{
    private static readonly JsonSerializerOptions Json = TimelineMetadata.Json;
    private readonly Dictionary<string, RemoteLayer> _layers = [];

    public ulong Generation => generation;
    public IObjectStore Store => store;
    public IReadOnlyCollection<RemoteLayer> Layers { get { lock (_layers) return _layers.Values.ToList(); } }

    /// <summary>Takes over the layer list of a downloaded manifest (they stay under their own generations).</summary>
    public void Adopt(IEnumerable<RemoteLayer> layers)
    {
        lock (_layers) foreach (var layer in layers) _layers[layer.Name] = layer;
    }

    /// <summary>Whether the layer is uploaded (and sealed, when <paramref name="sealedOnly"/>).</summary>
    public bool Has(string name, bool sealedOnly = true)
    {
        lock (_layers) return _layers.TryGetValue(name, out var layer) && (layer.Sealed || !sealedOnly);
    }

    public async Task UploadAsync(string name, string localPath, CancellationToken ct, bool sealedLayer = true)
    {
        var (size, crc) = await Crc32CWriteStream.ChecksumFileAsync(localPath, ct);
        await using (var file = new FileStream(localPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1 << 20))
            await store.PutAsync(RemoteKeys.Layer(tenantId, timelineId, name, generation), file, ct);
        lock (_layers) _layers[name] = new RemoteLayer(name, generation, size, crc, sealedLayer);
    }

    /// <summary>Publishes the manifest of this generation, then drops older generations' manifests.</summary>
    public async Task PublishAsync(TimelineMetadata metadata, IReadOnlyList<Images.ImageLayer> images, CancellationToken ct)
    {
        var index = new IndexPart(generation, metadata, Layers.OrderBy(l => l.Name, StringComparer.Ordinal).ToList(), images);
        await store.PutAsync(RemoteKeys.IndexPart(tenantId, timelineId, generation), new MemoryStream(JsonSerializer.SerializeToUtf8Bytes(index, Json)), ct);
        var older = new List<string>();
        await foreach (var old in store.ListAsync(RemoteKeys.Timeline(tenantId, timelineId) + RemoteKeys.IndexPartPrefix, ct))
            if (RemoteKeys.GenerationOf(old.Key) is { } g && g < generation) older.Add(old.Key);
        if (older.Count == 0) return;
        await EnsureCurrentAsync(ct);
        foreach (var key in older) await store.DeleteAsync(key, ct);
    }

    /// <summary>
    /// Deleting is safe only for the newest generation's holder (ARCHITECTURE.md invariant 5): a
    /// pageserver that was failed away from while it still ran must not delete what the new one reads.
    /// </summary>
    public async Task EnsureCurrentAsync(CancellationToken ct)
    {
        if (generationIsCurrent is not null && !await generationIsCurrent(ct))
            throw new StaleGenerationException(tenantId, timelineId, generation);
    }

    /// <summary>Stops listing layers (the next manifest leaves them out); returns those that were listed.</summary>
    public IReadOnlyList<RemoteLayer> Forget(IEnumerable<string> names)
    {
        var forgotten = new List<RemoteLayer>();
        lock (_layers)
            foreach (var name in names)
                if (_layers.Remove(name, out var layer)) forgotten.Add(layer);
        return forgotten;
    }

    /// <summary>Deletes forgotten layers' objects, except any a newer generation wrote.</summary>
    public async Task DeleteAsync(IEnumerable<RemoteLayer> layers, CancellationToken ct)
    {
        var doomed = layers.ToList();
        if (doomed.Count == 0) return;
        await EnsureCurrentAsync(ct);
        foreach (var layer in doomed)
            if (layer.Generation <= generation)
                await store.DeleteAsync(RemoteKeys.Layer(tenantId, timelineId, layer.Name, layer.Generation), ct);
    }

    public async Task DownloadAsync(RemoteLayer layer, Func<Stream, Task> consume, CancellationToken ct)
    {
        await using var content = await store.GetAsync(RemoteKeys.Layer(tenantId, timelineId, layer.Name, layer.Generation), ct);
        if (content.Length != layer.Size)
            throw new ObjectCorruptException(layer.Name, $"layer is {content.Length} bytes, the manifest says {layer.Size}");
        await consume(content); // the object store verifies the content's CRC as it is read
    }

    /// <summary>The manifest with the highest generation, or null when the timeline has none.</summary>
    public static async Task<IndexPart?> LatestIndexAsync(IObjectStore store, string tenantId, string timelineId, CancellationToken ct)
    {
        string? newest = null;
        ulong best = 0;
        await foreach (var o in store.ListAsync(RemoteKeys.Timeline(tenantId, timelineId) + RemoteKeys.IndexPartPrefix, ct))
            if (RemoteKeys.GenerationOf(o.Key) is { } g && (newest is null || g > best)) (newest, best) = (o.Key, g);
        if (newest is null) return null;
        await using var content = await store.GetAsync(newest, ct);
        using var buffer = new MemoryStream();
        await content.CopyToAsync(buffer, ct);
        return JsonSerializer.Deserialize<IndexPart>(buffer.ToArray(), Json) ?? throw new ObjectCorruptException(newest, "empty index_part");
    }

    /// <summary>Every timeline that has a manifest in object storage.</summary>
    public static async Task<IReadOnlyList<(string Tenant, string Timeline)>> ListTimelinesAsync(IObjectStore store, CancellationToken ct)
    {
        var found = new HashSet<(string, string)>();
        await foreach (var o in store.ListAsync("tenants/", ct))
            if (RemoteKeys.GenerationOf(o.Key) is not null && RemoteKeys.TimelineOf(o.Key) is { } t) found.Add(t);
        return found.ToList();
    }
}
