namespace Storage.ObjectStore;

/// <summary>An object's key, size (of its content) and last modification time.</summary>
public sealed record ObjectInfo(string Key, long Size, DateTimeOffset LastModified);

/// <summary>
/// Object storage: immutable-by-replacement blobs under '/'-separated keys (see <see cref="ObjectKey"/>).
/// Every object carries a CRC-32C of its content, written with it and checked when the whole object
/// is read. Backends: <see cref="LocalFsObjectStore"/> (a folder) and <see cref="S3ObjectStore"/>.
/// </summary>
public interface IObjectStore : IDisposable
{
    /// <summary>
    /// Stores <paramref name="content"/> (read to its end, never buffered whole) under
    /// <paramref name="key"/>, replacing any previous object at once: readers see the old content or
    /// the new, never a mix. A put that throws leaves the previous object as it was.
    /// </summary>
    Task PutAsync(string key, Stream content, CancellationToken ct = default);

    /// <summary>
    /// Streams the whole object. Its length and CRC-32C are verified as it is read: the read that
    /// would deliver the last bytes throws <see cref="ObjectCorruptException"/> instead when they do
    /// not match, so a reader never reaches the end of bad content. The stream's Length is the size.
    /// </summary>
    /// <exception cref="ObjectNotFoundException">no object has this key</exception>
    Task<Stream> GetAsync(string key, CancellationToken ct = default);

    /// <summary>
    /// Streams bytes [offset, offset + length) of the object, cut at its end (empty past the end).
    /// Only the length is verified (a short read throws <see cref="ObjectCorruptException"/>); the
    /// object's checksum covers the whole content, so it cannot vouch for a part: formats read by
    /// range carry their own per-block checksums.
    /// </summary>
    /// <exception cref="ObjectNotFoundException">no object has this key</exception>
    Task<Stream> GetRangeAsync(string key, long offset, long length, CancellationToken ct = default);

    /// <summary>The object's size and time, or null when there is none.</summary>
    Task<ObjectInfo?> HeadAsync(string key, CancellationToken ct = default);

    /// <summary>
    /// Every object whose key starts with <paramref name="prefix"/> (plain string prefix, "" for all,
    /// "a/" for everything under a/ at any depth), in ordinal key order, as S3 lists them.
    /// </summary>
    IAsyncEnumerable<ObjectInfo> ListAsync(string prefix, CancellationToken ct = default);

    /// <summary>Deletes the object; deleting a key that does not exist does nothing (as in S3).</summary>
    Task DeleteAsync(string key, CancellationToken ct = default);
}
