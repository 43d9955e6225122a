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

/// <summary>
/// The compute proxy process: the Postgres wire-protocol proxy with the control plane and its VM
/// pool (the VMs are the control plane's, not storagectl's).
/// </summary>
public sealed class ProxyEntry : IProcessEntry
{
    /// <summary>Where clients connect with the PostgreSQL protocol.</summary>
    public required int Port { get; init; }
    /// <summary>The control plane's admin HTTP API (and /metrics).</summary>
    public required int AdminPort { get; init; }
    public int PoolSize { get; init; } = 2;
    public int? Pid { get; set; }

    [JsonIgnore] public string Name => "proxy";
    [JsonIgnore] public Uri AdminUri => new($"http://127.0.0.1:{AdminPort}");
}

/// <summary>
/// A compute VM an older storagectl started itself (cluster.json "computes"); read only so `down`
/// and `up` can stop it before the control plane takes over.
/// </summary>
public sealed class LegacyComputeEntry : IProcessEntry
{
    public required string Name { get; init; }
    public int? Pid { get; set; }
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

/// <summary>The storage controller: places timelines on the pageservers, issues generations, fails over.</summary>
public sealed class ControllerEntry : IProcessEntry
{
    public required int Port { get; init; }
    public required int HttpPort { get; init; }
    public int? Pid { get; set; }

    [JsonIgnore] public string Name => "controller";
    [JsonIgnore] public Uri Uri => new($"http://127.0.0.1:{Port}");
}

/// <summary>The default endpoint users connect to and its role; the control plane registers it on the first `up`.</summary>
public sealed class EndpointEntry
{
    public required string Id { get; init; }
    public required string RoleName { get; init; }
    public required string Password { get; init; }
}

/// <summary>
/// Where the cluster keeps its durable copy: an S3 bucket (MinIO, AWS) when an endpoint is set,
/// otherwise the local folder `.storage/remote`. Chosen on the first `up` and kept.
/// </summary>
public sealed record ObjectStoreEntry(string? S3Endpoint, string? Bucket, string? AccessKey, string? SecretKey, string? Region)
{
    /// <summary>The options every safekeeper and pageserver is started with.</summary>
    public IEnumerable<string> Arguments(string localFolder)
    {
        if (S3Endpoint is null) return ["--remote-storage", localFolder];
        var args = new List<string> { "--s3-endpoint", S3Endpoint, "--s3-bucket", Bucket ?? "storage" };
        if (AccessKey is not null) args.AddRange(["--s3-access-key", AccessKey]);
        if (SecretKey is not null) args.AddRange(["--s3-secret-key", SecretKey]);
        if (Region is not null) args.AddRange(["--s3-region", Region]);
        return args;
    }

    public string Describe(string localFolder) => S3Endpoint is null ? localFolder : $"S3 {S3Endpoint}, bucket {Bucket ?? "storage"}";
}

/// <summary>The contents of cluster.json: which processes run where, and the default timeline.</summary>
public sealed class ClusterState
{
    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public required string TenantId { get; init; }
    public required string TimelineId { get; init; }
    public required List<SafekeeperEntry> Safekeepers { get; init; }
    public List<PageserverEntry> Pageservers { get; init; } = new();
    /// <summary>Null in a cluster.json of an older storagectl (one pageserver, no controller) until `up` migrates it.</summary>
    public ControllerEntry? Controller { get; set; }
    /// <summary>Null in a cluster.json of an older storagectl, which ran its VM itself (see <see cref="LegacyComputes"/>).</summary>
    public ProxyEntry? Proxy { get; set; }
    [JsonPropertyName("computes")] public List<LegacyComputeEntry>? LegacyComputes { get; set; }
    public EndpointEntry? Endpoint { get; set; }
    /// <summary>Null: the local folder (also what a cluster.json of an older storagectl means).</summary>
    public ObjectStoreEntry? ObjectStore { get; set; }

    /// <summary>The proxy; a cluster.json of an older storagectl has none until `up` migrates it.</summary>
    [JsonIgnore] public ProxyEntry RequiredProxy =>
        Proxy ?? throw new CliError("this cluster was made by an older storagectl without the proxy; run `storagectl up` once to migrate it");

    /// <summary>The URI clients use: through the proxy, which routes it to the default endpoint.</summary>
    [JsonIgnore] public string ConnectionString => ConnectionStringFor(
        Endpoint ?? throw new CliError("cluster.json has no endpoint"), endpointOption: false);

    /// <summary>A URI through the proxy; with <paramref name="endpointOption"/> it names the endpoint (options=endpoint=ID).</summary>
    public string ConnectionStringFor(EndpointEntry endpoint, bool endpointOption) =>
        ProxyConnectionString(endpoint, $"127.0.0.1:{RequiredProxy.Port}", endpointOption);

    /// <summary>
    /// A URI through a proxy at <paramref name="proxyAddress"/> (HOST:PORT), also for clusters
    /// storagectl does not run; without a password when the endpoint's is empty (not known here).
    /// </summary>
    public static string ProxyConnectionString(EndpointEntry endpoint, string proxyAddress, bool endpointOption) =>
        $"postgresql://{Uri.EscapeDataString(endpoint.RoleName)}{(endpoint.Password.Length > 0 ? ":" + Uri.EscapeDataString(endpoint.Password) : "")}@{proxyAddress}/postgres"
        + (endpointOption ? $"?options=endpoint%3D{Uri.EscapeDataString(endpoint.Id)}" : "");

    /// <summary>Every process, in stop order (see <see cref="StopOrder"/>).</summary>
    [JsonIgnore] public IEnumerable<IProcessEntry> Processes => StopOrder.SelectMany(group => group);

    /// <summary>
    /// Groups to stop one after the other: the proxy first (its control plane stops its VMs, each
    /// stopping PostgreSQL cleanly while the safekeepers still commit), then pageservers (they stream
    /// from the safekeepers), then the controller (so it sees no pageserver die), then safekeepers.
    /// </summary>
    [JsonIgnore] public IEnumerable<IEnumerable<IProcessEntry>> StopOrder =>
        [(IEnumerable<IProcessEntry>?)LegacyComputes ?? [], Proxy is null ? [] : [Proxy], Pageservers, Controller is null ? [] : [Controller], Safekeepers];

    /// <summary>Ports of the proxy: below the old VM ports, above the HTTP ports of sk1..sk3, ps1, ps2 and the controller (base+10..17 by default).</summary>
    public static ProxyEntry NewProxy(int basePort) => new() { Port = basePort + 19, AdminPort = basePort + 18 };

    /// <summary>ps1 and ps2 beside the safekeepers: gRPC at base+5 and base+6, HTTP at the HTTP base+5 and +6.</summary>
    public static PageserverEntry NewPageserver(int number, int basePort, int httpBasePort) =>
        new() { Name = $"ps{number}", Port = basePort + 4 + number, HttpPort = httpBasePort + 4 + number };

    /// <summary>The storage controller: gRPC at base+7, HTTP at the HTTP base+7.</summary>
    public static ControllerEntry NewController(int basePort, int httpBasePort) => new() { Port = basePort + 7, HttpPort = httpBasePort + 7 };

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
        Pageservers = [NewPageserver(1, basePort, httpBasePort), NewPageserver(2, basePort, httpBasePort)],
        Controller = NewController(basePort, httpBasePort),
        Proxy = NewProxy(basePort),
        Endpoint = new EndpointEntry { Id = "main", RoleName = "app", Password = NewPassword() },
    };

    /// <summary>Hex: safe in a URI without escaping.</summary>
    public static string NewPassword() => Guid.NewGuid().ToString("N")[..16];

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

    /// <summary>Finds a process by name: sk1..sk3 (or 1..3), ps1, ps2, controller or proxy.</summary>
    public IProcessEntry FindProcess(string component) =>
        component.Equals("proxy", StringComparison.OrdinalIgnoreCase) ? RequiredProxy
        : component.Equals("controller", StringComparison.OrdinalIgnoreCase) && Controller is not null ? Controller
        : Pageservers.FirstOrDefault(p => p.Name.Equals(component, StringComparison.OrdinalIgnoreCase)) as IProcessEntry
        ?? (component.StartsWith("sk", StringComparison.OrdinalIgnoreCase) || component.All(char.IsAsciiDigit)
            ? Find(component)
            : throw new CliError($"unknown component '{component}'; expected one of {string.Join(", ", Processes.Select(p => p.Name))}, vm:<endpoint> or postgres:<endpoint>"));

    /// <summary>Finds a safekeeper by "sk2" or "2".</summary>
    public SafekeeperEntry Find(string component)
    {
        var number = component.StartsWith("sk", StringComparison.OrdinalIgnoreCase) ? component[2..] : component;
        return Safekeepers.FirstOrDefault(s => s.Id.ToString() == number)
            ?? throw new CliError($"unknown component '{component}'; expected one of {string.Join(", ", Safekeepers.Select(s => s.Name))}");
    }
}
