using Grpc.Net.Client;
using Storage.Core.Api;
using Storage.Core.Auth;
using Storage.Core.Rpc;
using Storage.Proto.Controller;
using Storage.Proto.Pageserver;
using Storage.Testing;
using ControllerGrpc = Storage.Proto.Controller.StorageController;
using PageserverGrpc = Storage.Proto.Pageserver.Pageserver;

namespace Storage.StorageController.Tests;

/// <summary>
/// Every method family of a real pageserver and storage controller refuses every kind of bad token
/// and keeps serving good callers; a pageserver registers only as itself.
/// </summary>
public sealed class AuthTests
{
    private static DateTime Deadline() => DateTime.UtcNow + TimeSpan.FromSeconds(20);

    [Fact]
    public async Task Every_pageserver_and_controller_method_refuses_bad_tokens_and_both_keep_serving()
    {
        await using var cluster = await ComputeCluster.StartAsync(vms: 0, withController: true);
        var ps = cluster.Pageserver.Uri;
        var timeline = PageserverClient.Id(cluster.TenantId, cluster.TimelineId);
        static PageserverGrpc.PageserverClient Pageserver(GrpcChannel channel) => new(channel);

        // Data of one tenant: computes of that tenant and the control plane.
        await AuthProbe.AssertRefusedAsync(ps, async channel =>
        {
            using var call = Pageserver(channel).Basebackup(new BasebackupRequest { Timeline = timeline, Lsn = cluster.Timeline.IngestedLsn }, deadline: Deadline());
            await call.ResponseStream.MoveNext(CancellationToken.None);
        }, wrongScope: Scope.Pageserver, tenantBound: true);
        await AuthProbe.AssertRefusedAsync(ps, channel => Pageserver(channel).GetTimelineAsync(new TimelineRequest { Timeline = timeline }, deadline: Deadline()).ResponseAsync,
            wrongScope: Scope.Pageserver, tenantBound: true);
        await AuthProbe.AssertRefusedAsync(ps, channel => Pageserver(channel).LsnForTimestampAsync(new LsnForTimestampRequest { Timeline = timeline }, deadline: Deadline()).ResponseAsync,
            wrongScope: Scope.Pageserver, tenantBound: true);
        // Placement: the storage controller only (nobody else detaches or attaches a copy).
        await AuthProbe.AssertRefusedAsync(ps, channel => Pageserver(channel).SetLocationAsync(new LocationRequest { Timeline = timeline, Mode = LocationMode.Secondary }, deadline: Deadline()).ResponseAsync,
            wrongScope: Scope.ControlPlane, tenantBound: false);
        await AuthProbe.AssertRefusedAsync(ps, channel => Pageserver(channel).CreateTimelineAsync(new CreateTimelineRequest { Timeline = PageserverClient.Id(TimelineIds.New(), TimelineIds.New()) }, deadline: Deadline()).ResponseAsync,
            wrongScope: Scope.Compute, tenantBound: false);
        await AuthProbe.AssertRefusedAsync(ps, channel => Pageserver(channel).ListTimelinesAsync(new ListTimelinesRequest(), deadline: Deadline()).ResponseAsync,
            wrongScope: Scope.Compute, tenantBound: false);

        var controller = cluster.Controller!.Uri;
        static ControllerGrpc.StorageControllerClient Controller(GrpcChannel channel) => new(channel);
        // Registration and generations: pageservers only.
        await AuthProbe.AssertRefusedAsync(controller, channel => Controller(channel).RegisterPageserverAsync(new RegisterPageserverRequest { NodeId = "ps9", Address = "http://127.0.0.1:9" }, deadline: Deadline()).ResponseAsync,
            wrongScope: Scope.ControlPlane, tenantBound: false);
        await AuthProbe.AssertRefusedAsync(controller, channel => Controller(channel).ValidateGenerationsAsync(new ValidateGenerationsRequest { NodeId = "ps1" }, deadline: Deadline()).ResponseAsync,
            wrongScope: Scope.Compute, tenantBound: false);
        // Placements: the control plane (and a compute of the tenant, for where its basebackups come from).
        await AuthProbe.AssertRefusedAsync(controller, channel => Controller(channel).GetPlacementAsync(new TimelineRequest { Timeline = timeline }, deadline: Deadline()).ResponseAsync,
            wrongScope: Scope.Pageserver, tenantBound: true);
        await AuthProbe.AssertRefusedAsync(controller, channel => Controller(channel).CreateTimelineAsync(new CreateTimelineRequest { Timeline = PageserverClient.Id(TimelineIds.New(), TimelineIds.New()) }, deadline: Deadline()).ResponseAsync,
            wrongScope: Scope.Compute, tenantBound: false);
        await AuthProbe.AssertRefusedAsync(controller, channel => Controller(channel).StatusAsync(new ControllerStatusRequest(), deadline: Deadline()).ResponseAsync,
            wrongScope: Scope.Compute, tenantBound: false);

        // A pageserver's token registers only its own node: ps2 cannot claim to be ps1.
        using (var ps2 = GrpcChannels.Create(controller, TestAuth.Secrets.Token(Scope.Pageserver, "ps2")))
        {
            var impostor = await Assert.ThrowsAsync<Grpc.Core.RpcException>(() => Controller(ps2).RegisterPageserverAsync(
                new RegisterPageserverRequest { NodeId = "ps1", Address = "http://127.0.0.1:9" }, deadline: Deadline()).ResponseAsync);
            Assert.Equal(Grpc.Core.StatusCode.PermissionDenied, impostor.StatusCode);
        }

        // Good callers still served: the tenant's compute reads its timeline, the control plane its placement.
        using var compute = GrpcChannels.Create(ps, TestAuth.ComputeTokens.For(cluster.TenantId));
        Assert.Equal(cluster.TimelineId, (await Pageserver(compute).GetTimelineAsync(new TimelineRequest { Timeline = timeline }, deadline: Deadline())).Timeline.TimelineId);
        using var controlPlane = GrpcChannels.Create(controller, TestAuth.Secrets.Token(Scope.ControlPlane, "control-plane"));
        Assert.Equal("ps1", (await Controller(controlPlane).GetPlacementAsync(new TimelineRequest { Timeline = timeline }, deadline: Deadline())).AttachedNode);
        Assert.Contains((await Controller(controlPlane).StatusAsync(new ControllerStatusRequest(), deadline: Deadline())).Nodes, n => n.NodeId == "ps1" && n.Online);
    }
}
