using System.Text.Json;
using Storage.Core;
using Storage.Core.Storage;

namespace Storage.Pageserver.Images;

/// <summary>Reads what pg_basebackup's backup_manifest says about the WAL a backup needs.</summary>
internal static class BackupManifest
{
    /// <summary>The backup's WAL range: replay starts at Start (the redo point) and is consistent at End.</summary>
    public static (Lsn Start, Lsn End) WalRange(string path)
    {
        using var document = JsonDocument.Parse(File.ReadAllBytes(path));
        if (!document.RootElement.TryGetProperty("WAL-Ranges", out var ranges) || ranges.GetArrayLength() != 1)
            throw new CorruptFileException(path, "backup_manifest has no single WAL range (a timeline switch during the backup?)");
        var range = ranges[0];
        if (range.GetProperty("Timeline").GetInt32() != 1)
            throw new CorruptFileException(path, "backup_manifest's WAL range is not on PostgreSQL timeline 1");
        return (Lsn.Parse(range.GetProperty("Start-LSN").GetString()!), Lsn.Parse(range.GetProperty("End-LSN").GetString()!));
    }
}
