using System.Text.RegularExpressions;
using Storage.Core.Api;

namespace Storage.ComputeProxy.ControlPlane;

/// <summary>A request the current state does not allow (an endpoint that exists, no idle VM...): HTTP 409.</summary>
public sealed class ConflictException(string message) : Exception(message);

/// <summary>What a new endpoint is made of; unset fields get defaults.</summary>
public sealed record EndpointSpec(
    string Id,
    string TenantId,
    string TimelineId,
    string? RoleName = null,
    string? RolePassword = null,
    IReadOnlyDictionary<string, string>? PostgresSettings = null,
    TimeSpan? SuspendTimeout = null);

/// <summary>Endpoint id -> tenant, timeline, role, settings and the VM serving it, persisted in the <see cref="StateStore"/>.</summary>
public sealed partial class EndpointRegistry(StateStore store, TimeSpan defaultSuspendTimeout)
{
    public const string DefaultRole = "app";

    [GeneratedRegex("^[a-z0-9][a-z0-9-]{0,62}$")]
    private static partial Regex EndpointIdPattern();

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]{0,62}$")]
    private static partial Regex RolePattern();

    public EndpointRecord Create(EndpointSpec spec)
    {
        var record = Validate(spec);
        return store.Update(d =>
        {
            if (d.Endpoints.ContainsKey(record.Id)) throw new ConflictException($"endpoint '{record.Id}' already exists");
            d.Endpoints[record.Id] = record;
            return record;
        });
    }

    public IReadOnlyList<EndpointRecord> List() => store.Read(d => d.Endpoints.Values.OrderBy(e => e.Id, StringComparer.Ordinal).ToList());

    public EndpointRecord? Find(string id) => store.Read(d => d.Endpoints.GetValueOrDefault(id));

    public EndpointRecord Get(string id) => Find(id) ?? throw new UnknownEndpointException(id);

    public void Delete(string id) => store.Update(d =>
    {
        if (!d.Endpoints.Remove(id)) throw new UnknownEndpointException(id);
    });

    /// <summary>Records which VM serves the endpoint (null: none). A deleted endpoint stays deleted.</summary>
    public void SetVm(string id, string? vmId) => store.Update(d =>
    {
        if (d.Endpoints.TryGetValue(id, out var e) && e.VmId != vmId) d.Endpoints[id] = e with { VmId = vmId };
    });

    private EndpointRecord Validate(EndpointSpec spec)
    {
        if (spec.Id is null || !EndpointIdPattern().IsMatch(spec.Id))
            throw new ArgumentException($"endpoint id must be 1-63 lower-case letters, digits or '-', got '{spec.Id}'");
        var role = spec.RoleName ?? DefaultRole;
        if (!RolePattern().IsMatch(role)) throw new ArgumentException($"role name must be a plain SQL identifier, got '{role}'");
        if (spec.RolePassword is { Length: 0 }) throw new ArgumentException("role password must not be empty");
        var timeout = spec.SuspendTimeout ?? defaultSuspendTimeout;
        if (timeout <= TimeSpan.Zero) throw new ArgumentException("suspend timeout must be positive");
        return new EndpointRecord(spec.Id,
            TimelineIds.Normalize(spec.TenantId, "tenant id"),
            TimelineIds.Normalize(spec.TimelineId, "timeline id"),
            role,
            spec.RolePassword ?? Guid.NewGuid().ToString("N")[..16],
            new Dictionary<string, string>(spec.PostgresSettings ?? new Dictionary<string, string>()),
            timeout);
    }
}
