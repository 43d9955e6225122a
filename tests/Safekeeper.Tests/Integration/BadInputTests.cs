using Storage.Testing;
using Google.Protobuf;
using Storage.Core;
using Storage.Core.Api;
using Grpc.Core;
using Storage.Core.Rpc;
using Storage.Core.Processes;
using Storage.Proto.Safekeeper;

namespace Storage.Safekeeper.Tests.Integration;

/// <summary>Bad input gets a clear gRPC status and loses nothing; the safekeeper keeps serving.</summary>
[Collection("processes")]
public class BadInputTests
{
    [Fact]
    public async Task A_safekeeper_told_a_taken_port_exits_and_says_so()
    {
        using var taken = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        taken.Start();
        int port = ((System.Net.IPEndPoint)taken.LocalEndpoint).Port;
        var root = Directory.CreateTempSubdirectory("sk-port-").FullName;
        try
        {
            var e = await Assert.ThrowsAsync<PortInUseException>(() => ServiceProcess.StartAsync(
                SafekeeperCommand.Assembly,
                SafekeeperCommand.Arguments(1, port, null, Path.Combine(root, "sk1"), "az-a", extra: TestAuth.VerifierArguments),
                Path.Combine(root, "sk1.log"), readyTimeout: TimeSpan.FromSeconds(60)));
            Assert.Contains("address already in use", e.Message, StringComparison.OrdinalIgnoreCase);
        }
        finally { Directory.Delete(root, recursive: true); }
    }

    [Fact]
    public async Task Unknown_or_malformed_timelines_are_refused_clearly()
    {
        await using var cluster = await SafekeeperCluster.StartAsync();
        var unknown = await Assert.ThrowsAsync<RpcException>(() => cluster.Client(0).GetTimelineStatusAsync(
            new TimelineStatusRequest { Timeline = new TimelineKey { TenantId = TimelineIds.New(), TimelineId = TimelineIds.New() } }, deadline: SafekeeperCluster.Deadline()).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, unknown.StatusCode);
        Assert.Contains("not known", unknown.Status.Detail);

        var malformed = await Assert.ThrowsAsync<RpcException>(() => cluster.Client(0).GetTimelineStatusAsync(
            new TimelineStatusRequest { Timeline = new TimelineKey { TenantId = "not-hex", TimelineId = TimelineIds.New() } }, deadline: SafekeeperCluster.Deadline()).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, malformed.StatusCode);
        Assert.Contains("tenant_id must be 32 hex characters", malformed.Status.Detail);

        var missingStart = await Assert.ThrowsAsync<RpcException>(() => cluster.Client(0).CreateTimelineAsync(
            new CreateTimelineRequest { Timeline = new TimelineKey { TenantId = TimelineIds.New(), TimelineId = TimelineIds.New() } }, deadline: SafekeeperCluster.Deadline()).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, missingStart.StatusCode);

        Assert.Equal(cluster.TimelineId, (await cluster.StatusAsync(0)).Timeline.TimelineId); // still serving
    }

    [Fact]
    public async Task Proposer_messages_out_of_order_or_of_an_old_term_are_refused()
    {
        await using var cluster = await SafekeeperCluster.StartAsync();
        var channel = SafekeeperClient.For(cluster.Uris[0]);

        // A conversation must start with a greeting.
        using (var call = channel.ProposerStream(deadline: SafekeeperCluster.Deadline()))
        {
            await call.RequestStream.WriteAsync(new ProposerMessage { VoteRequest = new VoteRequest { Term = 1 } });
            var e = await Assert.ThrowsAsync<RpcException>(async () => await call.ResponseStream.ReadNextAsync());
            Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
            Assert.Contains("must begin with a greeting", e.Status.Detail);
        }

        // An append before any election of its term.
        using (var call = channel.ProposerStream(deadline: SafekeeperCluster.Deadline()))
        {
            await call.RequestStream.WriteAsync(new ProposerMessage { Greeting = new ProposerGreeting { Timeline = cluster.Key, ProposerId = "rogue" } });
            Assert.NotNull((await call.ResponseStream.ReadNextAsync())!.Greeting);
            await call.RequestStream.WriteAsync(new ProposerMessage { Append = new AppendRequest { Term = 0, BeginLsn = SafekeeperCluster.TimelineStart.Value, EndLsn = SafekeeperCluster.TimelineStart.Value + 4, WalData = ByteString.CopyFrom(1, 2, 3, 4) } });
            var e = await Assert.ThrowsAsync<RpcException>(async () => await call.ResponseStream.ReadNextAsync());
            Assert.Equal(StatusCode.FailedPrecondition, e.StatusCode);
            Assert.Contains("no ProposerElected", e.Status.Detail);
        }

        // A real proposer takes term 1; an append of an older term is refused as superseded.
        await using var proposer = cluster.NewProposer();
        proposer.Start();
        await proposer.WaitElectedAsync(new CancellationTokenSource(TimeSpan.FromSeconds(90)).Token);
        // Elected by the other two, this safekeeper may not have voted yet: the stale term would then be its own.
        await SafekeeperClusterTests.WaitUntilAsync(async () => (await cluster.StatusAsync(0)).Term == proposer.Term, cluster, () => Task.FromResult(cluster.Logs()));
        using (var call = channel.ProposerStream(deadline: SafekeeperCluster.Deadline()))
        {
            await call.RequestStream.WriteAsync(new ProposerMessage { Greeting = new ProposerGreeting { Timeline = cluster.Key, ProposerId = "stale" } });
            Assert.NotNull((await call.ResponseStream.ReadNextAsync())!.Greeting);
            await call.RequestStream.WriteAsync(new ProposerMessage { Append = new AppendRequest { Term = proposer.Term - 1, BeginLsn = SafekeeperCluster.TimelineStart.Value, EndLsn = SafekeeperCluster.TimelineStart.Value } });
            RpcException? refused = null;
            try { while (await call.ResponseStream.ReadNextAsync() is { } m) Assert.True(m.AppendResponse.Term > proposer.Term - 1); }
            catch (RpcException e) { refused = e; }
            Assert.NotNull(refused);
            Assert.Equal(StatusCode.Aborted, refused!.StatusCode);
            Assert.Contains($"safekeeper term {proposer.Term}", refused.Status.Detail);
        }
        Assert.Equal(global::Storage.Proposer.ProposerPhase.Elected, proposer.Phase); // the legitimate proposer is unaffected
    }

    [Fact]
    public async Task A_vote_for_an_absurd_term_is_refused_and_proposers_are_elected_after_it()
    {
        await using var cluster = await SafekeeperCluster.StartAsync();
        for (int i = 0; i < 3; i++)
        {
            var channel = SafekeeperClient.For(cluster.Uris[i]);
            using var call = channel.ProposerStream(deadline: SafekeeperCluster.Deadline());
            await call.RequestStream.WriteAsync(new ProposerMessage { Greeting = new ProposerGreeting { Timeline = cluster.Key, ProposerId = "rogue" } });
            Assert.NotNull((await call.ResponseStream.ReadNextAsync())!.Greeting);
            await call.RequestStream.WriteAsync(new ProposerMessage { VoteRequest = new VoteRequest { Term = ulong.MaxValue } });
            var e = await Assert.ThrowsAsync<RpcException>(async () => await call.ResponseStream.ReadNextAsync());
            Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
            Assert.Contains("largest term", e.Status.Detail);
            Assert.Equal(0UL, (await cluster.StatusAsync(i)).Term);
        }

        // A real proposer is elected with the next term and commits.
        await using var proposer = cluster.NewProposer();
        proposer.Start();
        var start = await proposer.WaitElectedAsync(new CancellationTokenSource(TimeSpan.FromSeconds(90)).Token);
        Assert.Equal(1UL, proposer.Term);
        var end = proposer.Append(new Core.Wal.SyntheticTransactions(new Core.Wal.WalBuilder(start), new Random(1)).Next(10_000));
        await proposer.WaitForCommitAsync(end).WaitAsync(TimeSpan.FromSeconds(90));
    }

    [Fact]
    public async Task A_corrupt_control_file_takes_only_its_timeline_out_of_service()
    {
        await using var cluster = await SafekeeperCluster.StartAsync();
        var healthy = new TimelineKey { TenantId = TimelineIds.New(), TimelineId = TimelineIds.New() };
        await cluster.Client(0).CreateTimelineAsync(new CreateTimelineRequest { Timeline = healthy, StartLsn = SafekeeperCluster.TimelineStart.Value }, deadline: DateTime.UtcNow + SafekeeperCluster.CreateTimeout);

        cluster.Kill(0);
        var controlFile = Path.Combine(cluster.TimelineDir(0), "safekeeper.control");
        var bytes = File.ReadAllBytes(controlFile);
        bytes[bytes.Length / 2] ^= 0xFF;
        File.WriteAllBytes(controlFile, bytes);
        await cluster.StartAsync(0);

        var broken = await Assert.ThrowsAsync<RpcException>(() => cluster.StatusAsync(0));
        Assert.Equal(StatusCode.DataLoss, broken.StatusCode);
        Assert.Contains("checksum mismatch", broken.Status.Detail);
        var ok = await cluster.Client(0).GetTimelineStatusAsync(new TimelineStatusRequest { Timeline = healthy }, deadline: SafekeeperCluster.Deadline());
        Assert.Equal(healthy.TimelineId, ok.Timeline.TimelineId);
        Assert.Equal(bytes, File.ReadAllBytes(controlFile)); // the damaged file is left for inspection, not overwritten
    }

}
