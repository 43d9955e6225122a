using Storage.Core;
using Storage.Core.Errors;
using Storage.ObjectStore;
using Storage.Pageserver.Images;
using Storage.Pageserver.Remote;
using Storage.Pageserver.Timelines;

namespace Storage.Pageserver.Tests;

/// <summary>
/// <see cref="LayerMirror"/> (a secondary's download of a manifest's layers) and the generation
/// check of <see cref="RemoteTimeline"/>, over a local-folder object store in a temp dir.
/// </summary>
public sealed class LayerMirrorTests : IDisposable
{
    private const string Tenant = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    private const string Timeline = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    private static readonly WalGeometry Geometry = WalGeometry.Default;
    private static readonly string Segment1 = Geometry.SegmentFileName(1, 1);
    private static readonly string Segment2 = Geometry.SegmentFileName(1, 2);
    private static readonly string Index1 = Segment1 + ".index";
    private static readonly CancellationToken Ct = CancellationToken.None;

    private readonly string _root = Directory.CreateTempSubdirectory("ps-mirror-").FullName;
    private readonly LocalFsObjectStore _store;

    public LayerMirrorTests() => _store = new LocalFsObjectStore(Path.Combine(_root, "remote"));

    public void Dispose()
    {
        _store.Dispose();
        Directory.Delete(_root, recursive: true);
    }

    private string Source => Path.Combine(_root, "source");
    private TimelinePaths MirrorPaths => new(Path.Combine(_root, "mirror"));

    /// <summary>A secondary's view of object storage: generation 0, it never uploads nor deletes.</summary>
    private LayerMirror NewMirror() => new(MirrorPaths, new RemoteTimeline(_store, Tenant, Timeline, generation: 0));

    private static byte[] Bytes(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    private static TimelineMetadata Metadata(ulong generation) => new()
    {
        TenantId = Tenant,
        TimelineId = Timeline,
        SystemIdentifier = 7,
        StartLsn = 0x0100_0028,
        WalFetchLsn = 0x0200_0000,
        DecodeFromLsn = 0x0200_0000,
        DecodePrevLsn = 0x01FF_FF00,
        RemoteConsistentLsn = 0x0200_0000,
        Generation = generation,
    };

    private async Task UploadAsync(RemoteTimeline writer, string name, byte[] content)
    {
        Directory.CreateDirectory(Source);
        var path = Path.Combine(Source, name);
        await File.WriteAllBytesAsync(path, content, Ct);
        await writer.UploadAsync(name, path, Ct);
    }

    /// <summary>An image made by the writer's own catalog (so its size and CRC are right), uploaded as a layer.</summary>
    private async Task<ImageLayer> UploadImageAsync(RemoteTimeline writer, ulong endLsn, byte[] tar)
    {
        var catalog = new ImageCatalog(Path.Combine(Source, "images"));
        var image = await catalog.AddAsync(new Lsn(endLsn - 0x100), new Lsn(endLsn), ImageKind.Backup, writer.Generation,
            stream => stream.WriteAsync(tar, Ct).AsTask(), Ct);
        await writer.UploadAsync(image.FileName, catalog.PathOf(image), Ct);
        return image;
    }

    private async Task<IndexPart> PublishAsync(RemoteTimeline writer, params ImageLayer[] images)
    {
        await writer.PublishAsync(Metadata(writer.Generation), images, Ct);
        var index = await RemoteTimeline.LatestIndexAsync(_store, Tenant, Timeline, Ct);
        Assert.NotNull(index);
        Assert.Equal(writer.Generation, index.Generation);
        return index;
    }

    /// <summary>What the first writer (generation 1) leaves in object storage: a segment, its index and an image.</summary>
    private sealed record Published(RemoteTimeline Writer, IndexPart Index, byte[] Segment, byte[] SegmentIndex, byte[] Tar, ImageLayer Image);

    private async Task<Published> PublishFirstGenerationAsync()
    {
        var writer = new RemoteTimeline(_store, Tenant, Timeline, generation: 1);
        var segment = Bytes(Geometry.SegmentSize, seed: 1);
        var segmentIndex = Bytes(3000, seed: 2); // the mirror copies an index without parsing it
        var tar = Bytes(50_000, seed: 3);        // likewise an image's tar
        await UploadAsync(writer, Segment1, segment);
        await UploadAsync(writer, Index1, segmentIndex);
        var image = await UploadImageAsync(writer, endLsn: 0x0100_0028, tar);
        var index = await PublishAsync(writer, image);
        Assert.Equal([Segment1, Index1, image.FileName], index.Layers.Select(l => l.Name));
        return new Published(writer, index, segment, segmentIndex, tar, image);
    }

    private string ObjectFileOf(RemoteLayer layer) => _store.PathOf(RemoteKeys.Layer(Tenant, Timeline, layer.Name, layer.Generation));

    // ---- SyncAsync ----

    [Fact]
    public async Task First_sync_downloads_every_layer_with_its_content_and_registers_the_images()
    {
        var published = await PublishFirstGenerationAsync();

        var downloaded = await NewMirror().SyncAsync(published.Index, Ct);

        Assert.Equal(3, downloaded);
        var paths = MirrorPaths;
        Assert.Equal(published.Segment, await File.ReadAllBytesAsync(Path.Combine(paths.Wal, Segment1), Ct));
        Assert.Equal(published.SegmentIndex, await File.ReadAllBytesAsync(Path.Combine(paths.Wal, Index1), Ct));
        var catalog = new ImageCatalog(paths.Images);
        Assert.Equal([published.Image], catalog.All);
        await using (var tar = await catalog.OpenVerifiedAsync(published.Image, Ct)) // size and CRC match the catalog
        {
            using var copy = new MemoryStream();
            await tar.CopyToAsync(copy, Ct);
            Assert.Equal(published.Tar, copy.ToArray());
        }
        Assert.True(LayerMirror.ExistsIn(paths));
    }

    [Fact]
    public async Task A_second_sync_of_the_same_manifest_downloads_nothing()
    {
        var published = await PublishFirstGenerationAsync();
        await NewMirror().SyncAsync(published.Index, Ct);

        var downloaded = await NewMirror().SyncAsync(published.Index, Ct); // a new instance: the record is on disk

        Assert.Equal(0, downloaded);
        Assert.Equal(published.Segment, await File.ReadAllBytesAsync(Path.Combine(MirrorPaths.Wal, Segment1), Ct));
        Assert.Equal([published.Image], new ImageCatalog(MirrorPaths.Images).All);
    }

    [Fact]
    public async Task A_newer_manifest_that_drops_a_layer_and_adds_one_downloads_only_the_new_one_and_deletes_the_dropped_one()
    {
        var published = await PublishFirstGenerationAsync();
        var mirror = NewMirror();
        await mirror.SyncAsync(published.Index, Ct);
        // Generation 2 takes over the manifest, drops segment 1 (retention) and adds segment 2.
        var writer2 = new RemoteTimeline(_store, Tenant, Timeline, generation: 2);
        writer2.Adopt(published.Index.Layers);
        writer2.Forget([Segment1]);
        var segment2 = Bytes(Geometry.SegmentSize, seed: 4);
        await UploadAsync(writer2, Segment2, segment2);
        var index2 = await PublishAsync(writer2, published.Image);

        var downloaded = await mirror.SyncAsync(index2, Ct);

        Assert.Equal(1, downloaded);
        Assert.False(File.Exists(Path.Combine(MirrorPaths.Wal, Segment1)));
        Assert.Equal(segment2, await File.ReadAllBytesAsync(Path.Combine(MirrorPaths.Wal, Segment2), Ct));
        Assert.Equal(published.SegmentIndex, await File.ReadAllBytesAsync(Path.Combine(MirrorPaths.Wal, Index1), Ct));
        Assert.Equal([published.Image], new ImageCatalog(MirrorPaths.Images).All);
        Assert.Equal(0, await mirror.SyncAsync(index2, Ct));
    }

    [Fact]
    public async Task A_manifest_that_replaces_an_image_downloads_the_new_one_and_removes_the_old_from_catalog_and_disk()
    {
        var published = await PublishFirstGenerationAsync();
        var mirror = NewMirror();
        await mirror.SyncAsync(published.Index, Ct);
        var newTar = Bytes(60_000, seed: 5);
        var newImage = await UploadImageAsync(published.Writer, endLsn: 0x0180_0000, newTar);
        published.Writer.Forget([published.Image.FileName]);
        var index2 = await PublishAsync(published.Writer, newImage);

        var downloaded = await mirror.SyncAsync(index2, Ct);

        Assert.Equal(1, downloaded);
        var catalog = new ImageCatalog(MirrorPaths.Images);
        Assert.Equal([newImage], catalog.All);
        Assert.False(File.Exists(catalog.PathOf(published.Image)));
        Assert.Equal(newTar, await File.ReadAllBytesAsync(catalog.PathOf(newImage), Ct));
    }

    [Fact]
    public async Task A_layer_uploaded_again_with_new_content_under_the_same_name_is_downloaded_again()
    {
        // A timeline's first segment goes up unsealed, then again once finished.
        var writer = new RemoteTimeline(_store, Tenant, Timeline, generation: 1);
        var partial = Bytes(Geometry.SegmentSize, seed: 6);
        Directory.CreateDirectory(Source);
        var path = Path.Combine(Source, Segment1);
        await File.WriteAllBytesAsync(path, partial, Ct);
        await writer.UploadAsync(Segment1, path, Ct, sealedLayer: false);
        var mirror = NewMirror();
        await mirror.SyncAsync(await PublishAsync(writer), Ct);
        var finished = Bytes(Geometry.SegmentSize, seed: 7);
        await UploadAsync(writer, Segment1, finished);

        var downloaded = await mirror.SyncAsync(await PublishAsync(writer), Ct);

        Assert.Equal(1, downloaded);
        Assert.Equal(finished, await File.ReadAllBytesAsync(Path.Combine(MirrorPaths.Wal, Segment1), Ct));
    }

    [Fact]
    public async Task A_layer_whose_object_is_damaged_fails_the_sync_without_installing_it_and_the_sync_after_repair_fetches_only_what_is_missing()
    {
        var published = await PublishFirstGenerationAsync();
        var segment = published.Index.Layers.Single(l => l.Name == Segment1);
        var objectFile = ObjectFileOf(segment);
        var pristine = await File.ReadAllBytesAsync(objectFile, Ct);
        var damaged = pristine.ToArray();
        damaged[12345] ^= 0x01; // in the content: the size is right, the CRC is not
        await File.WriteAllBytesAsync(objectFile, damaged, Ct);
        var mirror = NewMirror();

        await Assert.ThrowsAsync<ObjectCorruptException>(() => mirror.SyncAsync(published.Index, Ct));

        Assert.False(File.Exists(Path.Combine(MirrorPaths.Wal, Segment1)));
        Assert.Empty(new ImageCatalog(MirrorPaths.Images).All);

        await File.WriteAllBytesAsync(objectFile, pristine, Ct);
        var downloaded = await mirror.SyncAsync(published.Index, Ct);

        Assert.Equal(3, downloaded); // the segment is the first layer: nothing had been downloaded
        Assert.Equal(published.Segment, await File.ReadAllBytesAsync(Path.Combine(MirrorPaths.Wal, Segment1), Ct));
        Assert.Equal([published.Image], new ImageCatalog(MirrorPaths.Images).All);
    }

    [Fact]
    public async Task A_damaged_last_layer_keeps_the_layers_downloaded_before_it_and_is_the_only_one_fetched_after_repair()
    {
        var published = await PublishFirstGenerationAsync();
        var imageLayer = published.Index.Layers.Single(l => l.Name == published.Image.FileName); // last in name order
        var objectFile = ObjectFileOf(imageLayer);
        var pristine = await File.ReadAllBytesAsync(objectFile, Ct);
        var damaged = pristine.ToArray();
        damaged[100] ^= 0x80;
        await File.WriteAllBytesAsync(objectFile, damaged, Ct);

        await Assert.ThrowsAsync<ObjectCorruptException>(() => NewMirror().SyncAsync(published.Index, Ct));

        var catalog = new ImageCatalog(MirrorPaths.Images);
        Assert.Empty(catalog.All); // a damaged image is never listed
        Assert.False(File.Exists(catalog.PathOf(published.Image)));

        await File.WriteAllBytesAsync(objectFile, pristine, Ct);
        var downloaded = await NewMirror().SyncAsync(published.Index, Ct);

        Assert.Equal(1, downloaded);
        Assert.Equal([published.Image], new ImageCatalog(MirrorPaths.Images).All);
        Assert.Equal(published.Tar, await File.ReadAllBytesAsync(catalog.PathOf(published.Image), Ct));
    }

    [Fact]
    public async Task A_layer_object_shorter_than_the_manifest_says_fails_the_sync_naming_the_layer()
    {
        var published = await PublishFirstGenerationAsync();
        var segment = published.Index.Layers.Single(l => l.Name == Segment1);
        var key = RemoteKeys.Layer(Tenant, Timeline, segment.Name, segment.Generation);
        await _store.PutAsync(key, new MemoryStream(published.Segment[..4096]), Ct); // a whole object, but short

        var e = await Assert.ThrowsAsync<ObjectCorruptException>(() => NewMirror().SyncAsync(published.Index, Ct));

        Assert.Equal(Segment1, e.Key);
        Assert.Contains("4096", e.Reason);
        Assert.False(File.Exists(Path.Combine(MirrorPaths.Wal, Segment1)));
    }

    [Fact]
    public async Task A_manifest_listing_an_image_without_its_layer_is_rejected()
    {
        var published = await PublishFirstGenerationAsync();
        var orphan = published.Image with { EndLsn = 0x0300_0000, RedoLsn = 0x02FF_0000 };
        var index = published.Index with { Images = [published.Image, orphan] };

        var e = await Assert.ThrowsAsync<ObjectCorruptException>(() => NewMirror().SyncAsync(index, Ct));

        Assert.Equal(orphan.FileName, e.Key);
        Assert.DoesNotContain(orphan, new ImageCatalog(MirrorPaths.Images).All);
    }

    [Fact]
    public async Task Seal_forgets_the_download_record()
    {
        var published = await PublishFirstGenerationAsync();
        var mirror = NewMirror();
        await mirror.SyncAsync(published.Index, Ct);

        mirror.Seal();

        Assert.False(LayerMirror.ExistsIn(MirrorPaths));
        Assert.True(File.Exists(Path.Combine(MirrorPaths.Wal, Segment1)));
    }

    [Fact]
    public async Task An_image_rewritten_at_the_same_lsn_by_a_newer_generation_replaces_the_old_one_on_disk_and_in_the_catalog()
    {
        var published = await PublishFirstGenerationAsync();
        var mirror = NewMirror();
        await mirror.SyncAsync(published.Index, Ct);
        // After a failover the new pageserver makes its own image at the same LSN (same file name).
        var writer2 = new RemoteTimeline(_store, Tenant, Timeline, generation: 2);
        writer2.Adopt(published.Index.Layers);
        writer2.Forget([published.Image.FileName]);
        var newTar = Bytes(70_000, seed: 8);
        var newImage = await UploadImageAsync(writer2, published.Image.EndLsn, newTar);
        Assert.Equal(published.Image.FileName, newImage.FileName);
        var index2 = await PublishAsync(writer2, newImage);

        var downloaded = await mirror.SyncAsync(index2, Ct);

        Assert.Equal(1, downloaded);
        var catalog = new ImageCatalog(MirrorPaths.Images);
        Assert.Equal([newImage], catalog.All);
        await using var tar = await catalog.OpenVerifiedAsync(newImage, Ct);
        Assert.Equal(newTar.Length, tar.Length);
    }

    [Fact]
    public async Task An_image_downloaded_by_a_sync_that_failed_later_is_removed_when_a_newer_manifest_drops_it()
    {
        var writer = new RemoteTimeline(_store, Tenant, Timeline, generation: 1);
        var first = await UploadImageAsync(writer, endLsn: 0x0100_0000, Bytes(1000, seed: 9));
        var second = await UploadImageAsync(writer, endLsn: 0x0200_0000, Bytes(1000, seed: 10));
        var index = await PublishAsync(writer, first, second);
        var secondFile = ObjectFileOf(index.Layers.Single(l => l.Name == second.FileName));
        var pristine = await File.ReadAllBytesAsync(secondFile, Ct);
        var damaged = pristine.ToArray();
        damaged[5] ^= 0x01;
        await File.WriteAllBytesAsync(secondFile, damaged, Ct);
        var mirror = NewMirror();
        await Assert.ThrowsAsync<ObjectCorruptException>(() => mirror.SyncAsync(index, Ct));
        await File.WriteAllBytesAsync(secondFile, pristine, Ct);
        writer.Forget([first.FileName]);
        var index2 = await PublishAsync(writer, second);

        await mirror.SyncAsync(index2, Ct);

        var catalog = new ImageCatalog(MirrorPaths.Images);
        Assert.Equal([second], catalog.All);
        Assert.False(File.Exists(catalog.PathOf(first)), "the dropped image's tar is left on disk");
    }

    // ---- RemoteTimeline's generation check ----

    private static Func<CancellationToken, Task<bool>> Current(bool current) => _ => Task.FromResult(current);

    [Fact]
    public async Task DeleteAsync_with_a_stale_generation_throws_and_deletes_nothing()
    {
        var published = await PublishFirstGenerationAsync();
        var stale = new RemoteTimeline(_store, Tenant, Timeline, generation: 1, Current(false));
        stale.Adopt(published.Index.Layers);
        var forgotten = stale.Forget([Segment1, Index1]);

        await Assert.ThrowsAsync<StaleGenerationException>(() => stale.DeleteAsync(forgotten, Ct));

        foreach (var layer in published.Index.Layers)
            Assert.NotNull(await _store.HeadAsync(RemoteKeys.Layer(Tenant, Timeline, layer.Name, layer.Generation), Ct));
    }

    [Fact]
    public async Task DeleteAsync_of_nothing_does_not_ask_whether_the_generation_is_current()
    {
        int asked = 0;
        var stale = new RemoteTimeline(_store, Tenant, Timeline, generation: 1, _ => { asked++; return Task.FromResult(false); });

        await stale.DeleteAsync([], Ct);

        Assert.Equal(0, asked);
    }

    [Fact]
    public async Task DeleteAsync_with_the_current_generation_deletes_its_layers_but_not_a_newer_generations()
    {
        var published = await PublishFirstGenerationAsync();
        var current = new RemoteTimeline(_store, Tenant, Timeline, generation: 1, Current(true));
        var newer = published.Index.Layers.Single(l => l.Name == Index1) with { Generation = 2 };
        var newerKey = RemoteKeys.Layer(Tenant, Timeline, newer.Name, newer.Generation);
        await _store.PutAsync(newerKey, new MemoryStream(published.SegmentIndex), Ct);
        var segment = published.Index.Layers.Single(l => l.Name == Segment1);

        await current.DeleteAsync([segment, newer], Ct);

        Assert.Null(await _store.HeadAsync(RemoteKeys.Layer(Tenant, Timeline, segment.Name, segment.Generation), Ct));
        Assert.NotNull(await _store.HeadAsync(newerKey, Ct));
    }

    [Fact]
    public async Task PublishAsync_with_a_stale_generation_publishes_its_manifest_but_keeps_older_ones_and_throws()
    {
        var published = await PublishFirstGenerationAsync();
        var stale = new RemoteTimeline(_store, Tenant, Timeline, generation: 2, Current(false));
        stale.Adopt(published.Index.Layers);

        await Assert.ThrowsAsync<StaleGenerationException>(() => stale.PublishAsync(Metadata(2), [published.Image], Ct));

        Assert.NotNull(await _store.HeadAsync(RemoteKeys.IndexPart(Tenant, Timeline, 2), Ct));
        Assert.NotNull(await _store.HeadAsync(RemoteKeys.IndexPart(Tenant, Timeline, 1), Ct));
        Assert.Equal(2UL, (await RemoteTimeline.LatestIndexAsync(_store, Tenant, Timeline, Ct))!.Generation);
    }

    [Fact]
    public async Task PublishAsync_with_the_current_generation_drops_older_manifests()
    {
        var published = await PublishFirstGenerationAsync();
        var current = new RemoteTimeline(_store, Tenant, Timeline, generation: 2, Current(true));
        current.Adopt(published.Index.Layers);

        await current.PublishAsync(Metadata(2), [published.Image], Ct);

        Assert.NotNull(await _store.HeadAsync(RemoteKeys.IndexPart(Tenant, Timeline, 2), Ct));
        Assert.Null(await _store.HeadAsync(RemoteKeys.IndexPart(Tenant, Timeline, 1), Ct));
    }
}
