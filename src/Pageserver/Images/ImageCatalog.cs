using System.Formats.Tar;
using System.Text.Json;
using Storage.Core;
using Storage.Core.Storage;

namespace Storage.Pageserver.Images;

/// <summary>
/// The images of one timeline on local disk: <c>image-LSN.tar</c> files and one checksummed
/// catalog listing them (written after the tar is durable, so a listed image always exists).
/// </summary>
internal sealed class ImageCatalog
{
    private const string Magic = "IMGC";
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };
    private readonly object _lock = new();
    private List<ImageLayer> _images;

    public ImageCatalog(string directory)
    {
        Directory = directory;
        System.IO.Directory.CreateDirectory(directory);
        _images = File.Exists(CatalogPath)
            ? JsonSerializer.Deserialize<List<ImageLayer>>(ChecksummedFile.Read(CatalogPath, Magic).Payload, Json) ?? []
            : [];
    }

    public string Directory { get; }
    private string CatalogPath => Path.Combine(Directory, "images.catalog");

    public IReadOnlyList<ImageLayer> All { get { lock (_lock) return _images.OrderBy(i => i.EndLsn).ToList(); } }

    public ImageLayer? Latest { get { lock (_lock) return _images.MaxBy(i => i.EndLsn); } }

    /// <summary>The newest image a basebackup at <paramref name="lsn"/> can start from.</summary>
    public ImageLayer? NewestAtOrBelow(Lsn lsn)
    {
        lock (_lock) return _images.Where(i => i.End <= lsn).MaxBy(i => i.EndLsn);
    }

    public string PathOf(ImageLayer image) => Path.Combine(Directory, image.FileName);

    /// <summary>
    /// Stores a tar written by <paramref name="writeTar"/> as an image, durably, and lists it.
    /// </summary>
    public async Task<ImageLayer> AddAsync(Lsn redo, Lsn end, ImageKind kind, ulong generation, Func<Stream, Task> writeTar, CancellationToken ct)
    {
        var probe = new ImageLayer(redo.Value, end.Value, kind, 0, 0, DateTime.UtcNow, generation);
        var path = PathOf(probe);
        long bytes = 0;
        uint crc = 0;
        await AtomicFile.WriteAsync(path, async file =>
        {
            await using var checksummed = new Crc32CWriteStream(file);
            await writeTar(checksummed);
            await checksummed.FlushAsync(ct);
            (bytes, crc) = (checksummed.BytesWritten, checksummed.Crc32C);
        }, ct, bufferSize: 1 << 20);
        var image = probe with { TarBytes = bytes, TarCrc32C = crc };
        Replace(list => { list.RemoveAll(i => i.EndLsn == image.EndLsn); list.Add(image); });
        return image;
    }

    /// <summary>Lists an image whose tar was put in place by a download.</summary>
    public void Register(ImageLayer image) => Replace(list => { list.RemoveAll(i => i.EndLsn == image.EndLsn); list.Add(image); });

    public void Remove(ImageLayer image)
    {
        Replace(list => list.RemoveAll(i => i.EndLsn == image.EndLsn));
        File.Delete(PathOf(image));
    }

    /// <summary>Opens an image's tar after checking its size and checksum against the catalog.</summary>
    public async Task<Stream> OpenVerifiedAsync(ImageLayer image, CancellationToken ct)
    {
        var path = PathOf(image);
        if (!File.Exists(path)) throw new CorruptFileException(path, "the image listed in the catalog is missing");
        var (bytes, crc) = await Crc32CWriteStream.ChecksumFileAsync(path, ct);
        if (bytes != image.TarBytes || crc != image.TarCrc32C)
            throw new CorruptFileException(path, $"image is {bytes} bytes with CRC {crc:X8}; the catalog says {image.TarBytes} bytes, CRC {image.TarCrc32C:X8}");
        return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
    }

    /// <summary>Tars a data directory (initdb's) as an image.</summary>
    public Task<ImageLayer> AddDirectoryAsync(string dataDirectory, Lsn redo, Lsn end, ImageKind kind, ulong generation, CancellationToken ct) =>
        AddAsync(redo, end, kind, generation, tar => TarFile.CreateFromDirectoryAsync(dataDirectory, tar, includeBaseDirectory: false, ct), ct);

    private void Replace(Action<List<ImageLayer>> change)
    {
        lock (_lock)
        {
            var next = _images.ToList();
            change(next);
            ChecksummedFile.Write(CatalogPath, Magic, 1, JsonSerializer.SerializeToUtf8Bytes(next.OrderBy(i => i.EndLsn).ToList(), Json));
            _images = next;
        }
    }
}
