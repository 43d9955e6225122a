using System.Text.Json;

namespace Storage.Core.Storage;

/// <summary>
/// A service's small persistent state as one JSON document in a <see cref="ChecksummedFile"/>,
/// rewritten atomically on every change: changes are rare and each must survive a crash
/// (a control plane's endpoints, a storage controller's generations).
/// </summary>
/// <remarks>
/// A change is made to a copy, which becomes the current document only once it is on disk: what
/// <see cref="Read"/> shows is always durable, and a failed write changes nothing. A published
/// document is never mutated again, so readers need no lock and never wait for an fsync.
/// </remarks>
public class ChecksummedJsonState<TDocument> where TDocument : class, new()
{
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = false };
    private readonly object _writeLock = new();
    private readonly string _magic;
    private readonly uint _version;
    private volatile Snapshot _current;

    /// <summary>The current document and its serialized form (copies are made from the bytes).</summary>
    private sealed record Snapshot(TDocument Document, byte[] Bytes);

    public ChecksummedJsonState(string path, string magic, uint version)
    {
        (Path, _magic, _version) = (path, magic, version);
        var bytes = File.Exists(path) ? ChecksummedFile.Read(path, magic).Payload : JsonSerializer.SerializeToUtf8Bytes(new TDocument(), Json);
        _current = new Snapshot(Deserialize(bytes) ?? throw new CorruptFileException(path, "empty state"), bytes);
    }

    public string Path { get; }

    public T Read<T>(Func<TDocument, T> read) => read(_current.Document);

    /// <summary>
    /// Applies a change to a copy of the document, writes the copy durably, and only then makes it
    /// current. If the change or the write throws, the document stays as it was and the caller gets
    /// the error. The change must not have side effects outside the document: it may be discarded.
    /// </summary>
    public T Update<T>(Func<TDocument, T> change)
    {
        lock (_writeLock)
        {
            var copy = Deserialize(_current.Bytes)!;
            var result = change(copy);
            var bytes = JsonSerializer.SerializeToUtf8Bytes(copy, Json);
            ChecksummedFile.Write(Path, _magic, _version, bytes);
            _current = new Snapshot(copy, bytes);
            return result;
        }
    }

    public void Update(Action<TDocument> change) => Update(d => { change(d); return 0; });

    private static TDocument? Deserialize(byte[] bytes) => JsonSerializer.Deserialize<TDocument>(bytes, Json);
}
