using System.Formats.Tar;
using System.Globalization;
using System.Text.Json;
using Storage.Core.Storage;

namespace Storage.Core.Basebackup;

/// <summary>What an image is: a data directory of one timeline, consistent at <see cref="Lsn"/>.</summary>
/// <param name="Lsn">End of the WAL the image contains; replay of later WAL starts here.</param>
/// <param name="TarBytes">Size of the tar, and <paramref name="TarCrc32C"/> its checksum, verified on read.</param>
public sealed record ImageManifest(string TenantId, string TimelineId, string Lsn, ulong SystemIdentifier,
    long TarBytes, uint TarCrc32C, DateTime CreatedUtc)
{
    public Lsn EndLsn => Core.Lsn.Parse(Lsn);
}

/// <summary>
/// Images of timelines (tars of data directories) in a folder: <c>root/tenant/timeline/</c>
/// holds <c>image-LSN.tar</c> with a checksummed manifest <c>image-LSN.manifest</c> beside it.
/// This is where attach gets its data directory until the pageserver serves basebackups.
/// </summary>
public sealed class ImageStore(string root)
{
    private const string ManifestMagic = "IMGM";
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    public string Root { get; } = Path.GetFullPath(root);

    public string TimelineDirectory(string tenantId, string timelineId) =>
        Path.Combine(Root, TimelineIdCheck(tenantId), TimelineIdCheck(timelineId));

    /// <summary>Tars <paramref name="dataDirectory"/> into the store durably; the manifest is written last.</summary>
    public async Task<ImageManifest> PutAsync(string tenantId, string timelineId, Lsn lsn, ulong systemIdentifier,
        string dataDirectory, CancellationToken ct = default)
    {
        var dir = TimelineDirectory(tenantId, timelineId);
        Directory.CreateDirectory(dir);
        var name = FileStem(lsn);
        var tarPath = Path.Combine(dir, name + ".tar");
        var temp = tarPath + ".tmp";
        await using (var file = new FileStream(temp, FileMode.Create, FileAccess.Write))
        {
            await TarFile.CreateFromDirectoryAsync(dataDirectory, file, includeBaseDirectory: false, ct);
            await file.FlushAsync(ct);
            FileSync.DataSync(file.SafeFileHandle);
        }
        File.Move(temp, tarPath, overwrite: true);
        var (bytes, crc) = await ChecksumAsync(tarPath, ct);
        var manifest = new ImageManifest(tenantId, timelineId, lsn.ToString(), systemIdentifier, bytes, crc, DateTime.UtcNow);
        ChecksummedFile.Write(Path.Combine(dir, name + ".manifest"), ManifestMagic, 1, JsonSerializer.SerializeToUtf8Bytes(manifest, Json));
        return manifest;
    }

    /// <summary>The newest image at or below <paramref name="lsn"/>, or null when there is none.</summary>
    public ImageManifest? FindLatest(string tenantId, string timelineId, Lsn lsn)
    {
        var dir = TimelineDirectory(tenantId, timelineId);
        if (!Directory.Exists(dir)) return null;
        return Directory.EnumerateFiles(dir, "image-*.manifest")
            .Select(ReadManifest)
            .Where(m => m.EndLsn <= lsn)
            .MaxBy(m => m.EndLsn.Value);
    }

    /// <summary>Opens an image's tar after checking its size and checksum against the manifest.</summary>
    public async Task<Stream> OpenVerifiedAsync(ImageManifest manifest, CancellationToken ct = default)
    {
        var path = Path.Combine(TimelineDirectory(manifest.TenantId, manifest.TimelineId), FileStem(manifest.EndLsn) + ".tar");
        if (!File.Exists(path)) throw new CorruptFileException(path, "the image named by its manifest is missing");
        var (bytes, crc) = await ChecksumAsync(path, ct);
        if (bytes != manifest.TarBytes || crc != manifest.TarCrc32C)
            throw new CorruptFileException(path, $"image is {bytes} bytes with CRC {crc:X8}; its manifest says {manifest.TarBytes} bytes, CRC {manifest.TarCrc32C:X8}");
        return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, useAsync: false);
    }

    private static ImageManifest ReadManifest(string path)
    {
        var (payload, _) = ChecksummedFile.Read(path, ManifestMagic);
        return JsonSerializer.Deserialize<ImageManifest>(payload, Json) ?? throw new CorruptFileException(path, "empty manifest");
    }

    private static string FileStem(Lsn lsn) => "image-" + lsn.Value.ToString("X16", CultureInfo.InvariantCulture);

    private static async Task<(long Bytes, uint Crc)> ChecksumAsync(string path, CancellationToken ct)
    {
        await using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
        var buffer = new byte[1 << 20];
        uint crc = Crc32C.Initial;
        long total = 0;
        int n;
        while ((n = await file.ReadAsync(buffer, ct)) > 0)
        {
            crc = Crc32C.Append(crc, buffer.AsSpan(0, n));
            total += n;
        }
        return (total, Crc32C.Finish(crc));
    }

    private static string TimelineIdCheck(string id) =>
        Api.TimelineIds.IsValid(id) ? id : throw new ArgumentException($"'{id}' is not a tenant/timeline id (32 hex characters)");
}
