using System.Formats.Tar;

namespace Storage.Pageserver.Images;

/// <summary>
/// Copies a pg_basebackup tar of the replay instance into an image, leaving out its WAL and the
/// files that only make sense for the replay instance (standby.signal, its settings).
/// </summary>
internal static class ImageFilter
{
    public static async Task CopyAsync(Stream source, Stream destination, CancellationToken ct)
    {
        await using var reader = new TarReader(source);
        await using var writer = new TarWriter(destination, TarEntryFormat.Pax, leaveOpen: true);
        while (await reader.GetNextEntryAsync(copyData: false, ct) is { } entry)
        {
            var name = entry.Name.StartsWith("./", StringComparison.Ordinal) ? entry.Name[2..] : entry.Name;
            if (ReplayInstance.ReplayOnlyFiles.Contains(name)) continue;
            if (name.StartsWith("pg_wal/", StringComparison.Ordinal) && name != "pg_wal/") continue;
            await writer.WriteEntryAsync(entry, ct);
        }
    }
}
