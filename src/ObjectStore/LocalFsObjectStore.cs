using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Text;
using Storage.Core;
using Storage.Core.Storage;

namespace Storage.ObjectStore;

/// <summary>
/// Objects as files in a folder (the embedded default): key "a/b/c" is the file root/a/b/c. Each file
/// holds the content followed by a 16-byte trailer: magic "SOB1", u64 content length, u32 CRC-32C
/// of the content (little-endian). One file per object keeps a put atomic: written to a temp file
/// under root/<see cref="ObjectKey.Reserved"/>, fsync'd, renamed over the key, directory fsync'd.
/// A key cannot be both an object and a "directory" of others here ("a" and "a/b"); S3 allows it.
/// Directories emptied by deletes are left in place.
/// </summary>
public sealed class LocalFsObjectStore : IObjectStore
{
    private const int TrailerSize = 16;
    private static readonly byte[] Magic = Encoding.ASCII.GetBytes("SOB1");
    private const int CopyBufferSize = 1 << 20;

    private readonly string _root;
    private readonly string _tempDir;

    public LocalFsObjectStore(string root)
    {
        _root = Path.GetFullPath(root);
        _tempDir = Path.Combine(_root, ObjectKey.Reserved);
        Directory.CreateDirectory(_tempDir);
        // Temp files are only ever left by a put that crashed: nobody can still be writing them.
        foreach (var stale in Directory.EnumerateFiles(_tempDir)) File.Delete(stale);
    }

    public string Root => _root;

    /// <summary>The file that holds an object (tests corrupt it on purpose).</summary>
    public string PathOf(string key)
    {
        ObjectKey.Validate(key);
        return Path.Combine(_root, key);
    }

    public async Task PutAsync(string key, Stream content, CancellationToken ct = default)
    {
        var path = PathOf(key);
        var directory = Path.GetDirectoryName(path)!;
        var temp = Path.Combine(_tempDir, Guid.NewGuid().ToString("N"));
        try
        {
            await using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 0, FileOptions.Asynchronous))
            {
                var buffer = new byte[CopyBufferSize];
                uint crc = Crc32C.Initial;
                long length = 0;
                int n;
                while ((n = await content.ReadAsync(buffer, ct)) > 0)
                {
                    crc = Crc32C.Append(crc, buffer.AsSpan(0, n));
                    length += n;
                    await file.WriteAsync(buffer.AsMemory(0, n), ct);
                }
                await file.WriteAsync(Trailer(length, Crc32C.Finish(crc)), ct);
                FileSync.DataSync(file.SafeFileHandle);
            }
            CreateDirectoryDurably(directory);
            File.Move(temp, path, overwrite: true);
            FileSync.SyncDirectory(directory);
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
    }

    public Task<Stream> GetAsync(string key, CancellationToken ct = default)
    {
        var file = Open(key);
        try
        {
            // The trailer is read through the same handle as the content: a concurrent put renames a
            // new file over the path but this handle keeps the old one, whole.
            long contentLength = ContentLength(key, file.Length);
            var trailer = new byte[TrailerSize];
            RandomAccess.Read(file.SafeFileHandle, trailer, contentLength);
            if (!trailer.AsSpan(0, 4).SequenceEqual(Magic))
                throw new ObjectCorruptException(key, "the trailer's magic is wrong");
            long length = BinaryPrimitives.ReadInt64LittleEndian(trailer.AsSpan(4));
            if (length != contentLength)
                throw new ObjectCorruptException(key, $"the trailer says {length} bytes but the file holds {contentLength}");
            uint crc = BinaryPrimitives.ReadUInt32LittleEndian(trailer.AsSpan(12));
            return Task.FromResult<Stream>(new VerifyingReadStream(file, length, key, crc));
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    public Task<Stream> GetRangeAsync(string key, long offset, long length, CancellationToken ct = default)
    {
        ObjectKey.ValidateRange(offset, length);
        var file = Open(key);
        try
        {
            long size = ContentLength(key, file.Length);
            long available = Math.Clamp(size - offset, 0, length);
            if (available > 0) file.Seek(offset, SeekOrigin.Begin);
            return Task.FromResult<Stream>(new VerifyingReadStream(file, available, key, expectedCrc: null));
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    public Task<ObjectInfo?> HeadAsync(string key, CancellationToken ct = default)
    {
        var file = new FileInfo(PathOf(key));
        return Task.FromResult(file.Exists ? Info(key, file) : null);
    }

    public async IAsyncEnumerable<ObjectInfo> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken ct = default)
    {
        ObjectKey.ValidatePrefix(prefix);
        // Only the directory named by the prefix's finished segments can hold matching keys.
        int lastSlash = prefix.LastIndexOf('/');
        var directory = lastSlash < 0 ? _root : Path.Combine(_root, prefix[..lastSlash]);
        if (!Directory.Exists(directory)) yield break;
        var found = new List<ObjectInfo>();
        foreach (var file in new DirectoryInfo(directory).EnumerateFiles("*", SearchOption.AllDirectories))
        {
            var key = Path.GetRelativePath(_root, file.FullName);
            if (key.StartsWith(ObjectKey.Reserved + "/", StringComparison.Ordinal) || !key.StartsWith(prefix, StringComparison.Ordinal)) continue;
            found.Add(Info(key, file));
        }
        found.Sort((a, b) => string.CompareOrdinal(a.Key, b.Key));
        foreach (var info in found)
        {
            ct.ThrowIfCancellationRequested();
            yield return info;
        }
        await Task.CompletedTask;
    }

    public Task DeleteAsync(string key, CancellationToken ct = default)
    {
        var path = PathOf(key);
        if (File.Exists(path))
        {
            File.Delete(path);
            FileSync.SyncDirectory(Path.GetDirectoryName(path)!);
        }
        return Task.CompletedTask;
    }

    public void Dispose() { }

    private FileStream Open(string key)
    {
        var path = PathOf(key);
        try
        {
            return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, CopyBufferSize, FileOptions.Asynchronous | FileOptions.SequentialScan);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException || Directory.Exists(path))
        {
            throw new ObjectNotFoundException(key);
        }
    }

    private static ObjectInfo Info(string key, FileInfo file) =>
        new(key, Math.Max(0, file.Length - TrailerSize), file.LastWriteTimeUtc);

    private static long ContentLength(string key, long fileLength) =>
        fileLength >= TrailerSize ? fileLength - TrailerSize
            : throw new ObjectCorruptException(key, $"the file has {fileLength} bytes, fewer than its trailer");

    private static byte[] Trailer(long length, uint crc)
    {
        var trailer = new byte[TrailerSize];
        Magic.CopyTo(trailer, 0);
        BinaryPrimitives.WriteInt64LittleEndian(trailer.AsSpan(4), length);
        BinaryPrimitives.WriteUInt32LittleEndian(trailer.AsSpan(12), crc);
        return trailer;
    }

    /// <summary>Creates missing directories up to <paramref name="directory"/>, fsyncing each new entry's parent.</summary>
    private void CreateDirectoryDurably(string directory)
    {
        if (Directory.Exists(directory)) return;
        CreateDirectoryDurably(Path.GetDirectoryName(directory)!);
        Directory.CreateDirectory(directory);
        FileSync.SyncDirectory(Path.GetDirectoryName(directory)!);
    }
}
