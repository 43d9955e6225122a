using Storage.ComputeProxy.ControlPlane;
using Storage.Core.Api;

namespace Storage.ControlPlane.Tests;

/// <summary>Which timeline each idle VM is prepared for (the policy alone, no processes).</summary>
public sealed class SparePreparerTests
{
    private sealed record IdleVm(string Id, string? PreparedTimeline);

    private static EndpointRecord Endpoint(string id) =>
        new(id, TimelineIds.New(), TimelineIds.New(), "app", "secret", new Dictionary<string, string>(), TimeSpan.FromMinutes(5), VmId: "vm-" + id);

    private static Dictionary<string, string> Assign(IReadOnlyList<IdleVm> idle, IReadOnlyList<EndpointRecord> wanted) =>
        SparePreparer.Assign(idle, wanted, (vm, e) => vm.PreparedTimeline == e.TimelineId).ToDictionary(a => a.Vm.Id, a => a.Endpoint.Id);

    [Fact]
    public void Nothing_attached_prepares_nothing() =>
        Assert.Empty(SparePreparer.Assign<IdleVm>([new("vm1", null)], [], (_, _) => true));

    [Fact]
    public void A_vm_keeps_the_timeline_it_holds_while_that_endpoint_is_attached()
    {
        var (a, b) = (Endpoint("a"), Endpoint("b"));
        var assigned = Assign([new("vm1", b.TimelineId), new("vm2", null)], [a, b]);
        Assert.Equal("b", assigned["vm1"]);
        Assert.Equal("a", assigned["vm2"]); // the timeline with no prepared VM yet
    }

    [Fact]
    public void Idle_vms_spread_over_the_attached_timelines()
    {
        var (a, b) = (Endpoint("a"), Endpoint("b"));
        var assigned = Assign([new("vm1", null), new("vm2", null), new("vm3", null), new("vm4", null)], [a, b]);
        Assert.Equal(2, assigned.Values.Count(e => e == "a"));
        Assert.Equal(2, assigned.Values.Count(e => e == "b"));
    }

    [Fact]
    public void A_vm_prepared_for_a_timeline_no_longer_attached_is_prepared_anew()
    {
        var (a, gone) = (Endpoint("a"), Endpoint("gone"));
        var assigned = Assign([new("vm1", gone.TimelineId)], [a]);
        Assert.Equal("a", assigned["vm1"]);
    }
}
