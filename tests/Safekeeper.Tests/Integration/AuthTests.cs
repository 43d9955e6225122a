using Grpc.Core;
using Grpc.Net.Client;
using Storage.Core;
using Storage.Core.Api;
using Storage.Core.Auth;
using Storage.Proto.Safekeeper;
using Storage.Testing;
using SafekeeperGrpc = Storage.Proto.Safekeeper.Safekeeper;

namespace Storage.Safekeeper.Tests.Integration;

/// <summary>
/// Every method family of a real safekeeper refuses every kind of bad token (none, garbage, expired,
/// another key, a scope it does not allow, another tenant's compute token) and keeps serving good callers.
/// </summary>
public sealed class AuthTests
{
    private static DateTime Deadline() => SafekeeperCluster.Deadline();

    [Fact]
    public async Task Every_method_refuses_bad_tokens_and_the_safekeeper_keeps_serving_good_callers()
    {
        await using var cluster = await SafekeeperCluster.StartAsync();
        var sk = cluster.Uris[0];
        var key = cluster.Key;
        static SafekeeperGrpc.SafekeeperClient Client(GrpcChannel channel) => new(channel);

        // The WAL consensus: computes of the timeline's tenant only.
        await AuthProbe.AssertRefusedAsync(sk, async channel =>
        {
            using var call = Client(channel).ProposerStream(deadline: Deadline());
            await call.RequestStream.WriteAsync(new ProposerMessage { Greeting = new ProposerGreeting { Timeline = key, ProposerId = "probe", ProtocolVersion = 1 } });
            await call.ResponseStream.MoveNext();
        }, wrongScope: Scope.Pageserver, tenantBound: true);
        // Reading WAL: pageservers, and computes of the tenant (peer recovery).
        await AuthProbe.AssertRefusedAsync(sk, async channel =>
        {
            using var call = Client(channel).ReadWal(new ReadWalRequest { Timeline = key, StartLsn = SafekeeperCluster.TimelineStart.Value, EndLsn = SafekeeperCluster.TimelineStart.Value + 8 }, deadline: Deadline());
            await call.ResponseStream.MoveNext();
        }, wrongScope: Scope.Controller, tenantBound: true);
        // A timeline's status.
        await AuthProbe.AssertRefusedAsync(sk, channel => Client(channel).GetTimelineStatusAsync(new TimelineStatusRequest { Timeline = key }, deadline: Deadline()).ResponseAsync,
            wrongScope: Scope.Controller, tenantBound: true);
        // Feedback that lets the safekeepers delete WAL: pageservers only.
        await AuthProbe.AssertRefusedAsync(sk, channel => Client(channel).ReportPageserverFeedbackAsync(new PageserverFeedback { Timeline = key, PageserverId = "ps1" }, deadline: Deadline()).ResponseAsync,
            wrongScope: Scope.Compute, tenantBound: false);
        // Listing and creating timelines: not computes.
        await AuthProbe.AssertRefusedAsync(sk, channel => Client(channel).ListTimelinesAsync(new ListTimelinesRequest(), deadline: Deadline()).ResponseAsync,
            wrongScope: Scope.Compute, tenantBound: false);
        await AuthProbe.AssertRefusedAsync(sk, channel => Client(channel).CreateTimelineAsync(new CreateTimelineRequest { Timeline = SafekeeperClient.Key(TimelineIds.New(), TimelineIds.New()) }, deadline: Deadline()).ResponseAsync,
            wrongScope: Scope.Compute, tenantBound: false);

        // Good callers: a compute of the tenant reads the status, a pageserver lists.
        using var compute = Core.Rpc.GrpcChannels.Create(sk, TestAuth.ComputeTokens.For(key.TenantId));
        Assert.Equal(key.TimelineId, (await Client(compute).GetTimelineStatusAsync(new TimelineStatusRequest { Timeline = key }, deadline: Deadline())).Timeline.TimelineId);
        using var pageserver = Core.Rpc.GrpcChannels.Create(sk, TestAuth.Secrets.Token(Scope.Pageserver, "ps1"));
        Assert.Contains((await Client(pageserver).ListTimelinesAsync(new ListTimelinesRequest(), deadline: Deadline())).Timelines, t => t.Timeline.TimelineId == key.TimelineId);
    }

    [Fact]
    public async Task A_safekeeper_without_a_public_key_refuses_to_start()
    {
        var root = Directory.CreateTempSubdirectory("sk-noauth-").FullName;
        try
        {
            var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => Core.Processes.ServiceProcess.StartAsync(Core.Processes.SafekeeperCommand.Assembly,
                Core.Processes.SafekeeperCommand.Arguments(1, Core.Processes.ServiceProcess.FreePort(), null, Path.Combine(root, "sk1"), "az-a"),
                Path.Combine(root, "sk1.log"), readyTimeout: TimeSpan.FromSeconds(60)));
            Assert.Contains("--auth-public-key is required", refused.Message);
        }
        finally { Directory.Delete(root, recursive: true); }
    }
}
