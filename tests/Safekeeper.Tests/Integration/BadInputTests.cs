using Storage.Testing;
using Google.Protobuf;
using Storage.Core;
using Storage.Core.Api;
using Storage.Core.Grpc;
using Storage.Core.Processes;
using Storage.Proto.Safekeeper;

namespace Storage.Safekeeper.Tests.Integration;

/// <summary>Bad input gets a clear gRPC status and loses nothing; the safekeeper keeps serving.</summary>
[Collection("processes")]
public class BadInputTests
{
    private static readonly CallOptions Bounded = new(Timeout: TimeSpan.FromSeconds(10));

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
                SafekeeperCommand.Arguments(1, port, null, Path.Combine(root, "sk1"), "az-a"),
                Path.Combine(root, "sk1.log"), readyTimeout: TimeSpan.FromSeconds(60)));
            Assert.Contains("address already in use", e.Message, StringComparison.OrdinalIgnoreCase);
        }
        finally { Directory.Delete(root, recursive: true); }
    }

    [Fact]
    public async Task Unknown_or_malformed_timelines_are_refused_clearly()
    {
        await using var cluster = await SafekeeperCluster.StartAsync();
        var unknown = await Assert.ThrowsAsync<RpcException>(() => cluster.CallAsync(0, SafekeeperApi.GetTimelineStatus,
            new TimelineStatusRequest { Timeline = new TimelineKey { TenantId = TimelineIds.New(), TimelineId = TimelineIds.New() } }));
        Assert.Equal(GrpcStatusCode.NotFound, unknown.Status);
        Assert.Contains("not known", unknown.Detail);

        var malformed = await Assert.ThrowsAsync<RpcException>(() => cluster.CallAsync(0, SafekeeperApi.GetTimelineStatus,
            new TimelineStatusRequest { Timeline = new TimelineKey { TenantId = "not-hex", TimelineId = TimelineIds.New() } }));
        Assert.Equal(GrpcStatusCode.InvalidArgument, malformed.Status);
        Assert.Contains("tenant_id must be 32 hex characters", malformed.Detail);

        var missingStart = await Assert.ThrowsAsync<RpcException>(() => cluster.CallAsync(0, SafekeeperApi.CreateTimeline,
            new CreateTimelineRequest { Timeline = new TimelineKey { TenantId = TimelineIds.New(), TimelineId = TimelineIds.New() } }));
        Assert.Equal(GrpcStatusCode.InvalidArgument, missingStart.Status);

        Assert.Equal(cluster.TimelineId, (await cluster.StatusAsync(0)).Timeline.TimelineId); // still serving
    }

    [Fact]
    public async Task Proposer_messages_out_of_order_or_of_an_old_term_are_refused()
    {
        await using var cluster = await SafekeeperCluster.StartAsync();
        using var channel = new GrpcChannel(cluster.Uris[0]);

        // A conversation must start with a greeting.
        using (var call = channel.Duplex(SafekeeperApi.ProposerStream, Bounded))
        {
            await call.RequestStream.WriteAsync(new ProposerMessage { VoteRequest = new VoteRequest { Term = 1 } });
            var e = await Assert.ThrowsAsync<RpcException>(async () => await call.ResponseStream.ReadAsync());
            Assert.Equal(GrpcStatusCode.InvalidArgument, e.Status);
            Assert.Contains("must begin with a greeting", e.Detail);
        }

        // An append before any election of its term.
        using (var call = channel.Duplex(SafekeeperApi.ProposerStream, Bounded))
        {
            await call.RequestStream.WriteAsync(new ProposerMessage { Greeting = new ProposerGreeting { Timeline = cluster.Key, ProposerId = "rogue" } });
            Assert.NotNull((await call.ResponseStream.ReadAsync())!.Greeting);
            await call.RequestStream.WriteAsync(new ProposerMessage { Append = new AppendRequest { Term = 0, BeginLsn = SafekeeperCluster.TimelineStart.Value, EndLsn = SafekeeperCluster.TimelineStart.Value + 4, WalData = ByteString.CopyFrom(1, 2, 3, 4) } });
            var e = await Assert.ThrowsAsync<RpcException>(async () => await call.ResponseStream.ReadAsync());
            Assert.Equal(GrpcStatusCode.FailedPrecondition, e.Status);
            Assert.Contains("no ProposerElected", e.Detail);
        }

        // A real proposer takes term 1; an append of an older term is refused as superseded.
        await using var proposer = cluster.NewProposer();
        proposer.Start();
        await proposer.WaitElectedAsync(new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token);
        // Elected by the other two, this safekeeper may not have voted yet: the stale term would then be its own.
        await SafekeeperClusterTests.WaitUntilAsync(async () => (await cluster.StatusAsync(0)).Term == proposer.Term, cluster, () => Task.FromResult(cluster.Logs()));
        using (var call = channel.Duplex(SafekeeperApi.ProposerStream, Bounded))
        {
            await call.RequestStream.WriteAsync(new ProposerMessage { Greeting = new ProposerGreeting { Timeline = cluster.Key, ProposerId = "stale" } });
            Assert.NotNull((await call.ResponseStream.ReadAsync())!.Greeting);
            await call.RequestStream.WriteAsync(new ProposerMessage { Append = new AppendRequest { Term = proposer.Term - 1, BeginLsn = SafekeeperCluster.TimelineStart.Value, EndLsn = SafekeeperCluster.TimelineStart.Value } });
            RpcException? refused = null;
            try { while (await call.ResponseStream.ReadAsync() is { } m) Assert.True(m.AppendResponse.Term > proposer.Term - 1); }
            catch (RpcException e) { refused = e; }
            Assert.NotNull(refused);
            Assert.Equal(GrpcStatusCode.Aborted, refused!.Status);
            Assert.Contains($"safekeeper term {proposer.Term}", refused.Detail);
        }
        Assert.Equal(global::Storage.Proposer.ProposerPhase.Elected, proposer.Phase); // the legitimate proposer is unaffected
    }

    [Fact]
    public async Task A_vote_for_an_absurd_term_is_refused_and_proposers_are_elected_after_it()
    {
        await using var cluster = await SafekeeperCluster.StartAsync();
        for (int i = 0; i < 3; i++)
        {
            using var channel = new GrpcChannel(cluster.Uris[i]);
            using var call = channel.Duplex(SafekeeperApi.ProposerStream, Bounded);
            await call.RequestStream.WriteAsync(new ProposerMessage { Greeting = new ProposerGreeting { Timeline = cluster.Key, ProposerId = "rogue" } });
            Assert.NotNull((await call.ResponseStream.ReadAsync())!.Greeting);
            await call.RequestStream.WriteAsync(new ProposerMessage { VoteRequest = new VoteRequest { Term = ulong.MaxValue } });
            var e = await Assert.ThrowsAsync<RpcException>(async () => await call.ResponseStream.ReadAsync());
            Assert.Equal(GrpcStatusCode.InvalidArgument, e.Status);
            Assert.Contains("largest term", e.Detail);
            Assert.Equal(0UL, (await cluster.StatusAsync(i)).Term);
        }

        // A real proposer is elected with the next term and commits.
        await using var proposer = cluster.NewProposer();
        proposer.Start();
        var start = await proposer.WaitElectedAsync(new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token);
        Assert.Equal(1UL, proposer.Term);
        var end = proposer.Append(new Core.Wal.SyntheticTransactions(new Core.Wal.WalBuilder(start), new Random(1)).Next(10_000));
        await proposer.WaitForCommitAsync(end).WaitAsync(TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task A_corrupt_control_file_takes_only_its_timeline_out_of_service()
    {
        await using var cluster = await SafekeeperCluster.StartAsync();
        var healthy = new TimelineKey { TenantId = TimelineIds.New(), TimelineId = TimelineIds.New() };
        await cluster.CallAsync(0, SafekeeperApi.CreateTimeline, new CreateTimelineRequest { Timeline = healthy, StartLsn = SafekeeperCluster.TimelineStart.Value });

        cluster.Kill(0);
        var controlFile = Path.Combine(cluster.TimelineDir(0), "safekeeper.control");
        var bytes = File.ReadAllBytes(controlFile);
        bytes[bytes.Length / 2] ^= 0xFF;
        File.WriteAllBytes(controlFile, bytes);
        await cluster.StartAsync(0);

        var broken = await Assert.ThrowsAsync<RpcException>(() => cluster.StatusAsync(0));
        Assert.Equal(GrpcStatusCode.DataLoss, broken.Status);
        Assert.Contains("checksum mismatch", broken.Detail);
        var ok = await cluster.CallAsync(0, SafekeeperApi.GetTimelineStatus, new TimelineStatusRequest { Timeline = healthy });
        Assert.Equal(healthy.TimelineId, ok.Timeline.TimelineId);
        Assert.Equal(bytes, File.ReadAllBytes(controlFile)); // the damaged file is left for inspection, not overwritten
    }

}
