using System.Text.Json;
using Storage.Core.Storage;

namespace Storage.ComputeProxy.ControlPlane;

/// <summary>One endpoint as the registry keeps it: what an attach needs, and the VM serving it (null while suspended).</summary>
public sealed record EndpointRecord(
    string Id,
    string TenantId,
    string TimelineId,
    string RoleName,
    string RolePassword,
    IReadOnlyDictionary<string, string> PostgresSettings,
    TimeSpan SuspendTimeout,
    string? VmId = null);

/// <summary>A compute agent the pool started: enough to find it again (or kill it) after a restart.</summary>
public sealed record VmRecord(string Id, int GrpcPort, int HttpPort, int PostgresPort, string WorkDirectory, int Pid);

/// <summary>
/// The control plane's persistent state in one checksummed file, rewritten atomically on every
/// change (registry and pool changes are rare; a lost update would lose an endpoint or leak a VM).
/// </summary>
public sealed class StateStore
{
    private const string Magic = "CPST";
    private const uint Version = 1;
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = false };

    public sealed class Document
    {
        public Dictionary<string, EndpointRecord> Endpoints { get; init; } = new();
        public Dictionary<string, VmRecord> Vms { get; init; } = new();
        public int NextVmNumber { get; set; } = 1;
    }

    private readonly object _lock = new();
    private readonly Document _document;

    public StateStore(string path)
    {
        Path = path;
        _document = File.Exists(path)
            ? JsonSerializer.Deserialize<Document>(ChecksummedFile.Read(path, Magic).Payload, Json) ?? throw new CorruptFileException(path, "empty state")
            : new Document();
    }

    public string Path { get; }

    public T Read<T>(Func<Document, T> read)
    {
        lock (_lock) return read(_document);
    }

    /// <summary>Applies a change and writes the file before anyone sees it.</summary>
    public T Update<T>(Func<Document, T> change)
    {
        lock (_lock)
        {
            var result = change(_document);
            ChecksummedFile.Write(Path, Magic, Version, JsonSerializer.SerializeToUtf8Bytes(_document, Json));
            return result;
        }
    }

    public void Update(Action<Document> change) => Update(d => { change(d); return 0; });
}
