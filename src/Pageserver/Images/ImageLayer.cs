using System.Text.Json.Serialization;
using Storage.Core;

namespace Storage.Pageserver.Images;

/// <summary>How PostgreSQL must be told to replay WAL over an image.</summary>
public enum ImageKind
{
    /// <summary>A cleanly shut down data directory (initdb's): pg_control is marked crashed so it replays.</summary>
    ShutDown,
    /// <summary>A pg_basebackup of the replay instance: its backup_label starts replay at the redo point.</summary>
    Backup,
}

/// <summary>
/// One image of a timeline: a tar of a data directory without WAL. A basebackup at LSN L from it
/// adds WAL [segment of <see cref="Redo"/>, L); PostgreSQL replays from the redo point, and needs
/// WAL at least up to <see cref="End"/> before the result is consistent.
/// </summary>
public sealed record ImageLayer(ulong RedoLsn, ulong EndLsn, ImageKind Kind, long TarBytes, uint TarCrc32C, DateTime CreatedUtc, ulong Generation)
{
    [JsonIgnore] public Lsn Redo => new(RedoLsn);
    [JsonIgnore] public Lsn End => new(EndLsn);

    /// <summary>File and object name of the tar, sorted by LSN.</summary>
    [JsonIgnore] public string FileName => $"image-{EndLsn:X16}.tar";
}
