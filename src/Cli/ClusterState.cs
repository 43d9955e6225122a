using System.Text.Json;
using System.Text.Json.Serialization;

namespace Storage.Cli;

/// <summary>A process of the local cluster that storagectl started and tracks by PID.</summary>
public interface IProcessEntry
{
    string Name { get; }
    /// <summary>The PID of the last start; null once stopped by storagectl.</summary>
    int? Pid { get; set; }
}

/// <summary>One safekeeper of the local cluster as recorded in cluster.json.</summary>
public sealed class SafekeeperEntry : IProcessEntry
{
    public required int Id { get; init; }
    public required string AvailabilityZone { get; init; }
    public required int Port { get; init; }
    public required int HttpPort { get; init; }
    /// <summary>The PID of the last start; null once stopped by storagectl.</summary>
    public int? Pid { get; set; }

    [JsonIgnore] public string Name => $"sk{Id}";
    [JsonIgnore] public Uri Uri => new($"http://127.0.0.1:{Port}");
}

/// <summary>One compute agent (a pooled VM) of the local cluster.</summary>
public sealed class ComputeEntry : IProcessEntry
{
    public required string Name { get; init; }
    public required int Port { get; init; }
    public required int HttpPort { get; init; }
    public required int PostgresPort { get; init; }
    public int? Pid { get; set; }

    [JsonIgnore] public Uri Uri => new($"http://127.0.0.1:{Port}");
}

/// <summary>A pageserver of the local cluster.</summary>
public sealed class PageserverEntry : IProcessEntry
{
    public required string Name { get; init; }
    public required int Port { get; init; }
    public required int HttpPort { get; init; }
    public int? Pid { get; set; }

    [JsonIgnore] public Uri Uri => new($"http://127.0.0.1:{Port}");
}

/// <summary>The endpoint users connect to: its role, and the VM it is attached to.</summary>
public sealed class EndpointEntry
{
    public required string Id { get; init; }
    public required string RoleName { get; init; }
    public required string Password { get; init; }
    public required string Vm { get; init; }
}

/// <summary>The contents of cluster.json: which processes run where, and the default timeline.</summary>
public sealed class ClusterState
{
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    public required string TenantId { get; init; }
    public required string TimelineId { get; init; }
    public required List<SafekeeperEntry> Safekeepers { get; init; }
    public List<PageserverEntry> Pageservers { get; init; } = new();
    public List<ComputeEntry> Computes { get; init; } = new();
    public EndpointEntry? Endpoint { get; set; }

    /// <summary>Every process, in stop order (see <see cref="StopOrder"/>).</summary>
    [JsonIgnore] public IEnumerable<IProcessEntry> Processes => StopOrder.SelectMany(group => group);

    /// <summary>
    /// Groups to stop one after the other: computes first (a VM stops its PostgreSQL cleanly while the
    /// safekeepers still commit), then pageservers (they stream from the safekeepers), then safekeepers.
    /// </summary>
    [JsonIgnore] public IEnumerable<IEnumerable<IProcessEntry>> StopOrder => [Computes, Pageservers, Safekeepers];

    /// <summary>A fresh cluster: three safekeepers in az-a..az-c on consecutive ports.</summary>
    public static ClusterState New(string tenantId, string timelineId, int basePort, int httpBasePort) => new()
    {
        TenantId = tenantId,
        TimelineId = timelineId,
        Safekeepers = Enumerable.Range(1, 3).Select(id => new SafekeeperEntry
        {
            Id = id,
            AvailabilityZone = $"az-{(char)('a' + id - 1)}",
            Port = basePort + id - 1,
            HttpPort = httpBasePort + id - 1,
        }).ToList(),
        // ps1 beside the safekeepers: gRPC at base+5, HTTP at the HTTP base+5.
        Pageservers = [new PageserverEntry { Name = "ps1", Port = basePort + 5, HttpPort = httpBasePort + 5 }],
        // vm1 after the safekeepers: gRPC at base+20, HTTP at base+30, PostgreSQL at base+40.
        Computes = [new ComputeEntry { Name = "vm1", Port = basePort + 20, HttpPort = basePort + 30, PostgresPort = basePort + 40 }],
        Endpoint = new EndpointEntry { Id = "main", RoleName = "app", Password = Guid.NewGuid().ToString("N")[..16], Vm = "vm1" },
    };

    public static ClusterState? Load(string path)
    {
        if (!File.Exists(path)) return null;
        try { return JsonSerializer.Deserialize<ClusterState>(File.ReadAllText(path), Json) ?? throw new CliError($"{path} is empty"); }
        catch (JsonException e) { throw new CliError($"{path} is not valid cluster state: {e.Message}"); }
    }

    /// <summary>Writes to a temp file and renames it, so a reader never sees half a file.</summary>
    public void Save(string path)
    {
        var temp = path + ".tmp";
        File.WriteAllText(temp, JsonSerializer.Serialize(this, Json));
        File.Move(temp, path, overwrite: true);
    }

    /// <summary>Finds a process by name: sk1..sk3 (or 1..3), ps1 or vm1.</summary>
    public IProcessEntry FindProcess(string component) =>
        Computes.FirstOrDefault(c => c.Name.Equals(component, StringComparison.OrdinalIgnoreCase)) as IProcessEntry
        ?? Pageservers.FirstOrDefault(p => p.Name.Equals(component, StringComparison.OrdinalIgnoreCase)) as IProcessEntry
        ?? (component.StartsWith("vm", StringComparison.OrdinalIgnoreCase)
            ? throw new CliError($"unknown component '{component}'; expected one of {string.Join(", ", Processes.Select(p => p.Name))}")
            : Find(component));

    /// <summary>Finds a safekeeper by "sk2" or "2".</summary>
    public SafekeeperEntry Find(string component)
    {
        var number = component.StartsWith("sk", StringComparison.OrdinalIgnoreCase) ? component[2..] : component;
        return Safekeepers.FirstOrDefault(s => s.Id.ToString() == number)
            ?? throw new CliError($"unknown component '{component}'; expected one of {string.Join(", ", Safekeepers.Select(s => s.Name))}");
    }
}
