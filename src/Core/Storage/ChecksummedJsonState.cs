using System.Text.Json;

namespace Storage.Core.Storage;

/// <summary>
/// A service's small persistent state as one JSON document in a <see cref="ChecksummedFile"/>,
/// rewritten atomically on every change: changes are rare and each must survive a crash
/// (a control plane's endpoints, a storage controller's generations).
/// </summary>
public class ChecksummedJsonState<TDocument> where TDocument : class, new()
{
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = false };
    private readonly object _lock = new();
    private readonly TDocument _document;
    private readonly string _magic;
    private readonly uint _version;

    public ChecksummedJsonState(string path, string magic, uint version)
    {
        (Path, _magic, _version) = (path, magic, version);
        _document = File.Exists(path)
            ? JsonSerializer.Deserialize<TDocument>(ChecksummedFile.Read(path, magic).Payload, Json) ?? throw new CorruptFileException(path, "empty state")
            : new TDocument();
    }

    public string Path { get; }

    public T Read<T>(Func<TDocument, T> read)
    {
        lock (_lock) return read(_document);
    }

    /// <summary>Applies a change and writes the file before anyone sees it.</summary>
    public T Update<T>(Func<TDocument, T> change)
    {
        lock (_lock)
        {
            var result = change(_document);
            ChecksummedFile.Write(Path, _magic, _version, JsonSerializer.SerializeToUtf8Bytes(_document, Json));
            return result;
        }
    }

    public void Update(Action<TDocument> change) => Update(d => { change(d); return 0; });
}
