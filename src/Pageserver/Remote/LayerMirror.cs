using System.Text.Json;
using Storage.Core;
using Storage.Core.Storage;
using Storage.ObjectStore;
using Storage.Pageserver.Images;
using Storage.Pageserver.Timelines;
using Storage.Pageserver.Wal;

namespace Storage.Pageserver.Remote;

/// <summary>
/// Makes a timeline directory hold exactly the layers of a manifest: downloads what is missing
/// (WAL segments, their indexes, images and the image catalog), removes what the manifest dropped,
/// and records what it downloaded, so the next sync (a secondary's refresh, or the attach that
/// promotes it) fetches only what is new. Used by attach-from-remote and by secondaries.
/// </summary>
internal sealed class LayerMirror(TimelinePaths paths, RemoteTimeline remote)
{
    private const string Magic = "PSDL";

    /// <summary>Whether the directory holds a mirror (possibly one cut short).</summary>
    public static bool ExistsIn(TimelinePaths paths) => File.Exists(paths.DownloadedLayers);

    /// <summary>Syncs to <paramref name="index"/>; returns how many layers were downloaded.</summary>
    public async Task<int> SyncAsync(IndexPart index, CancellationToken ct)
    {
        var have = Load();
        int downloaded = 0;
        Directory.CreateDirectory(paths.Wal);
        var images = new ImageCatalog(paths.Images);
        // Images the manifest no longer lists (or lists changed, e.g. rewritten at the same LSN) go
        // first: their file names may be reused by what is downloaded next.
        foreach (var image in images.All.Where(i => !index.Images.Contains(i)).ToList())
        {
            images.Remove(image);
            have.Remove(image.FileName);
        }
        using (var wal = new WalSegmentStore(paths.Wal, WalGeometry.Default))
        {
            foreach (var layer in index.Layers)
            {
                if (have.TryGetValue(layer.Name, out var local) && local == layer) continue;
                if (wal.Geometry.TryParseSegmentFileName(layer.Name, out _, out var segment))
                    await remote.DownloadAsync(layer, content => wal.InstallAsync(segment, content, ct), ct);
                else if (layer.Name.EndsWith(".index", StringComparison.Ordinal))
                    await remote.DownloadAsync(layer, content => AtomicFile.WriteAsync(Path.Combine(paths.Wal, layer.Name), file => content.CopyToAsync(file, ct), ct), ct);
                else if (index.Images.FirstOrDefault(i => i.FileName == layer.Name) is { } image)
                    await remote.DownloadAsync(layer, content => AtomicFile.WriteAsync(images.PathOf(image), file => content.CopyToAsync(file, ct), ct), ct);
                else continue; // a layer kind this version does not know: leave it to the manifest
                have[layer.Name] = layer;
                downloaded++;
                Save(have); // progress survives a crash: a restarted sync does not fetch it again
            }
            foreach (var gone in have.Keys.Except(index.Layers.Select(l => l.Name)).ToList())
            {
                if (wal.Geometry.TryParseSegmentFileName(gone, out _, out var segment)) wal.Delete(segment);
                else if (gone.EndsWith(".index", StringComparison.Ordinal)) File.Delete(Path.Combine(paths.Wal, gone));
                else File.Delete(Path.Combine(paths.Images, gone)); // an image downloaded but never listed (a sync cut short)
                have.Remove(gone);
            }
        }
        foreach (var image in index.Images.Where(i => !images.All.Contains(i)).ToList())
        {
            if (!have.ContainsKey(image.FileName))
                throw new ObjectCorruptException(image.FileName, "the manifest lists an image without its layer");
            images.Register(image);
        }
        Save(have);
        return downloaded;
    }

    /// <summary>The mirror becomes an attached timeline's own data: forget the download record.</summary>
    public void Seal() => File.Delete(paths.DownloadedLayers);

    private Dictionary<string, RemoteLayer> Load()
    {
        if (!File.Exists(paths.DownloadedLayers)) return [];
        var layers = JsonSerializer.Deserialize<List<RemoteLayer>>(ChecksummedFile.Read(paths.DownloadedLayers, Magic).Payload, TimelineMetadata.Json) ?? [];
        return layers.ToDictionary(l => l.Name);
    }

    private void Save(Dictionary<string, RemoteLayer> layers) =>
        ChecksummedFile.Write(paths.DownloadedLayers, Magic, 1, JsonSerializer.SerializeToUtf8Bytes(layers.Values.OrderBy(l => l.Name, StringComparer.Ordinal).ToList(), TimelineMetadata.Json));
}
