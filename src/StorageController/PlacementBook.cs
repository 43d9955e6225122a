using System.Collections.Concurrent;
using Storage.Core.Api;
using Storage.Core.Errors;
using Storage.Core.Storage;

namespace Storage.StorageController;

/// <summary>A pageserver the controller knows: where to reach it.</summary>
public sealed record NodeRecord(string Id, string Address);

/// <summary>Where one timeline lives: the attached pageserver with its generation, and the secondary (if any).</summary>
public sealed record PlacementRecord(string TenantId, string TimelineId, string Attached, string? Secondary, ulong Generation)
{
    public string Key => PlacementBook.Key(TenantId, TimelineId);
}

/// <summary>
/// The controller's persistent state: every generation it issued is on disk before anyone learns it
/// (a change becomes visible only once written; a failed write leaves the state as it was).
/// </summary>
public sealed class ControllerStore(string path) : ChecksummedJsonState<ControllerStore.Document>(path, "SCST", 1)
{
    public sealed class Document
    {
        public Dictionary<string, NodeRecord> Nodes { get; init; } = new();
        public Dictionary<string, PlacementRecord> Placements { get; init; } = new();
        public ulong Failovers { get; set; }
    }
}

/// <summary>
/// The placement rules, over the persisted state: at most one attached pageserver per timeline,
/// and every attach (a registration, a failover) gets a generation above all issued before.
/// </summary>
public sealed class PlacementBook(ControllerStore store)
{
    // Placed, but the pageserver is still creating the timeline: it exists nowhere yet, so there is
    // nothing to fail over or reconcile. In memory only: a controller restart ends the create call.
    private readonly ConcurrentDictionary<string, bool> _creating = new();

    public static string Key(string tenantId, string timelineId) => tenantId + "/" + timelineId;

    /// <summary>Whether the timeline was placed and its creation on the pageserver has not finished.</summary>
    public bool IsBeingCreated(string key) => _creating.ContainsKey(key);

    /// <summary>The pageserver created the placed timeline: from now on it is reconciled (and failed over).</summary>
    public void Created(PlacementRecord placement) => _creating.TryRemove(placement.Key, out _);

    public IReadOnlyList<NodeRecord> Nodes => store.Read(d => d.Nodes.Values.OrderBy(n => n.Id, StringComparer.Ordinal).ToList());
    public IReadOnlyList<PlacementRecord> Placements => store.Read(d => d.Placements.Values.OrderBy(p => p.Key, StringComparer.Ordinal).ToList());
    public ulong Failovers => store.Read(d => d.Failovers);

    public NodeRecord? Node(string id) => store.Read(d => d.Nodes.GetValueOrDefault(id));

    public PlacementRecord Get(string tenantId, string timelineId) =>
        store.Read(d => d.Placements.GetValueOrDefault(Key(tenantId, timelineId)))
        ?? throw new NotFoundException($"timeline {tenantId}/{timelineId} is not placed on any pageserver");

    /// <summary>
    /// A pageserver (re)started: it is recorded, and every timeline attached to it gets the next
    /// generation (whatever an earlier incarnation of it still does becomes stale).
    /// </summary>
    /// <param name="onDisk">Timelines the node holds as attached; one never placed is adopted as attached to it.</param>
    public IReadOnlyList<PlacementRecord> Register(string nodeId, string address, IEnumerable<(string TenantId, string TimelineId, ulong Generation)>? onDisk = null) => store.Update(d =>
    {
        if (string.IsNullOrWhiteSpace(nodeId)) throw new InvalidRequestException("node_id is empty");
        if (!Uri.TryCreate(address, UriKind.Absolute, out _)) throw new InvalidRequestException($"'{address}' is not a gRPC address");
        d.Nodes[nodeId] = new NodeRecord(nodeId, address);
        foreach (var (tenantId, timelineId, generation) in onDisk ?? [])
            if (TimelineIds.IsValid(tenantId) && TimelineIds.IsValid(timelineId) && !d.Placements.ContainsKey(Key(tenantId, timelineId)))
                d.Placements[Key(tenantId, timelineId)] = new PlacementRecord(tenantId, timelineId, nodeId, Secondary: null, generation);
        foreach (var placement in d.Placements.Values.Where(p => p.Attached == nodeId).ToList())
            d.Placements[placement.Key] = placement with { Generation = placement.Generation + 1 };
        return d.Placements.Values.Where(p => p.Attached == nodeId || p.Secondary == nodeId).ToList();
    });

    /// <summary>Whether <paramref name="nodeId"/> attached with <paramref name="generation"/> is still the timeline's newest attach.</summary>
    public bool IsCurrent(string nodeId, string tenantId, string timelineId, ulong generation) =>
        store.Read(d => d.Placements.GetValueOrDefault(Key(tenantId, timelineId)) is { } p && p.Attached == nodeId && p.Generation == generation);

    /// <summary>
    /// Places a new timeline: attached to the online node with the fewest attached timelines (or the
    /// ancestor's node for a branch: a branch copies its ancestor's local data), secondary on another.
    /// </summary>
    public PlacementRecord Place(string tenantId, string timelineId, IReadOnlyCollection<string> onlineNodes, PlacementRecord? ancestor)
    {
        // Marked before the placement can be seen (the reconciler must never find it unmarked),
        // unmarked again if it never became durable.
        var key = Key(tenantId, timelineId);
        bool marked = _creating.TryAdd(key, true);
        try { return store.Update(d => NewPlacement(d, tenantId, timelineId, onlineNodes, ancestor)); }
        catch
        {
            if (marked) _creating.TryRemove(key, out _);
            throw;
        }
    }

    private static PlacementRecord NewPlacement(ControllerStore.Document d, string tenantId, string timelineId, IReadOnlyCollection<string> onlineNodes, PlacementRecord? ancestor)
    {
        TimelineIds.EnsureValid(tenantId, timelineId);
        if (d.Placements.ContainsKey(Key(tenantId, timelineId)))
            throw new AlreadyExistsException($"timeline {tenantId}/{timelineId} is already placed");
        string attached;
        if (ancestor != null)
        {
            if (!onlineNodes.Contains(ancestor.Attached))
                throw new TemporarilyUnavailableException($"pageserver {ancestor.Attached}, attached to the ancestor, is offline");
            attached = ancestor.Attached;
        }
        else
        {
            attached = onlineNodes.OrderBy(n => d.Placements.Values.Count(p => p.Attached == n)).ThenBy(n => n, StringComparer.Ordinal).FirstOrDefault()
                ?? throw new TemporarilyUnavailableException("no pageserver is online");
        }
        var secondary = onlineNodes.Where(n => n != attached)
            .OrderBy(n => d.Placements.Values.Count(p => p.Secondary == n)).ThenBy(n => n, StringComparer.Ordinal).FirstOrDefault();
        var placement = new PlacementRecord(tenantId, timelineId, attached, secondary, Generation: 1);
        d.Placements[placement.Key] = placement;
        return placement;
    }

    /// <summary>Forgets a placement whose creation failed on the pageserver.</summary>
    public void Remove(PlacementRecord placement)
    {
        store.Update(d => { d.Placements.Remove(placement.Key); });
        _creating.TryRemove(placement.Key, out _);
    }

    /// <summary>
    /// Fails a timeline over: its secondary becomes attached with the next generation, the old
    /// attached node becomes the secondary. Null when there is no secondary to promote.
    /// </summary>
    public PlacementRecord? Promote(string key, string failedNode) => store.Update(d =>
    {
        if (!d.Placements.TryGetValue(key, out var p) || p.Attached != failedNode || p.Secondary is null) return null;
        var promoted = p with { Attached = p.Secondary, Secondary = failedNode, Generation = p.Generation + 1 };
        d.Placements[key] = promoted;
        d.Failovers++;
        return promoted;
    });

    /// <summary>Gives a timeline without a secondary one on <paramref name="nodeId"/>.</summary>
    public PlacementRecord? AssignSecondary(string key, string nodeId) => store.Update(d =>
    {
        if (!d.Placements.TryGetValue(key, out var p) || p.Secondary != null || p.Attached == nodeId) return null;
        return d.Placements[key] = p with { Secondary = nodeId };
    });
}
