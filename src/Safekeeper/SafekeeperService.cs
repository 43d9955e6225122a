using Google.Protobuf;
using Grpc.Core;
using Storage.Core.Auth;
using Storage.Core.Rpc;
using Microsoft.Extensions.Logging;
using Storage.Core;
using Storage.Core.Errors;
using Storage.Proto.Safekeeper;
using Storage.Safekeeper.Consensus;
using SafekeeperGrpc = Storage.Proto.Safekeeper.Safekeeper;

namespace Storage.Safekeeper;

/// <summary>
/// The safekeeper's gRPC API (proto/safekeeper.proto) on top of the timeline registry. Domain
/// failures are exceptions (<see cref="ServiceException"/>); the host's interceptor turns them into
/// status codes.
/// </summary>
internal sealed class SafekeeperService(TimelineRegistry registry, SafekeeperMetrics metrics, ILogger<SafekeeperService> log) : SafekeeperGrpc.SafekeeperBase
{
    public const int MaxReadChunk = 128 * 1024;

    [Allow(Scope.Pageserver, Scope.ControlPlane)]
    public override Task<TimelineStatus> CreateTimeline(CreateTimelineRequest request, ServerCallContext context) =>
        RefusedIfDiskFullAsync(async () => (await registry.CreateAsync(request)).Status());

    [Allow(Scope.Compute, Scope.Pageserver, Scope.ControlPlane)]
    public override Task<TimelineStatus> GetTimelineStatus(TimelineStatusRequest request, ServerCallContext context)
    {
        context.RequireTenant(request.Timeline?.TenantId ?? "");
        return Task.FromResult(registry.Get(request.Timeline).Status());
    }

    [Allow(Scope.Pageserver, Scope.ControlPlane)]
    public override Task<ListTimelinesResponse> ListTimelines(ListTimelinesRequest request, ServerCallContext context) => Task.FromResult(List());

    [Allow(Scope.Pageserver)]
    public override Task<TimelineStatus> ReportPageserverFeedback(PageserverFeedback request, ServerCallContext context) =>
        RefusedIfDiskFullAsync(() => PageserverFeedbackAsync(request, context.CancellationToken));

    /// <summary>Runs a request, turning a full disk into a refusal naming this safekeeper (RESOURCE_EXHAUSTED).</summary>
    private async Task<T> RefusedIfDiskFullAsync<T>(Func<Task<T>> request)
    {
        try { return await request(); }
        catch (Exception e) when (Core.Storage.DiskFull.Is(e))
        {
            log.LogWarning("request refused: disk full: {Error}", e.Message);
            throw DiskFullRefused(e);
        }
    }

    private DiskFullException DiskFullRefused(Exception e) => new($"disk full on safekeeper {registry.Node.NodeId}: {e.Message}", e);

    private async Task<TimelineStatus> PageserverFeedbackAsync(PageserverFeedback feedback, CancellationToken ct)
    {
        var timeline = registry.Get(feedback.Timeline);
        if (string.IsNullOrWhiteSpace(feedback.PageserverId))
            throw new InvalidRequestException("pageserver_id must be set");
        if (feedback.RemoteConsistentLsn == 0)
            throw new InvalidRequestException("remote_consistent_lsn must be set");
        await timeline.ReportRemoteConsistentAsync(new Lsn(feedback.RemoteConsistentLsn), feedback.PageserverId, ct);
        return timeline.Status();
    }

    private ListTimelinesResponse List()
    {
        var response = new ListTimelinesResponse { NodeId = registry.Node.NodeId, AvailabilityZone = registry.Node.AvailabilityZone };
        response.Timelines.AddRange(registry.All.Select(t => t.Status()).OrderBy(s => s.Timeline.TenantId).ThenBy(s => s.Timeline.TimelineId));
        return response;
    }

    /// <summary>
    /// One proposer conversation. Requests are handled in order as they arrive; append responses
    /// are sent by a second task whenever the timeline's flush LSN or term moves, so a burst of
    /// appends gets one response per group-commit flush. (The proposer learns nothing from our
    /// commit LSN, so a commit-only change is not worth a message.)
    /// </summary>
    [Allow(Scope.Compute)]
    public override async Task ProposerStream(IAsyncStreamReader<ProposerMessage> requests, IServerStreamWriter<AcceptorMessage> responses, ServerCallContext context)
    {
        var ct = context.CancellationToken;
        if (!await requests.MoveNext(ct)) return;
        var first = requests.Current;
        if (first.BodyCase != ProposerMessage.BodyOneofCase.Greeting)
            throw new InvalidRequestException($"a proposer conversation must begin with a greeting, not {first.BodyCase}");
        context.RequireTenant(first.Greeting.Timeline?.TenantId ?? "");
        var timeline = registry.Get(first.Greeting.Timeline);
        var proposer = first.Greeting.ProposerId;
        log.LogInformation("proposer {ProposerId} connected from {Peer} for {TenantId}/{TimelineId}", proposer, context.Peer, timeline.Identity.TenantId, timeline.Identity.TimelineId);
        metrics.ProposerStreamOpened();

        var sendLock = new SemaphoreSlim(1, 1);
        async Task SendAsync(AcceptorMessage message)
        {
            await sendLock.WaitAsync(ct);
            try { await responses.WriteAsync(message, ct); }
            finally { sendLock.Release(); }
        }

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var firstAppend = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var responder = RespondToAppendsAsync(timeline, firstAppend.Task, SendAsync, stop.Token);
        try
        {
            await SendAsync(new AcceptorMessage { Greeting = timeline.Greet() });
            while (await requests.MoveNext(ct))
            {
                var message = requests.Current;
                switch (message.BodyCase)
                {
                    case ProposerMessage.BodyOneofCase.VoteRequest:
                        await SendAsync(new AcceptorMessage { VoteResponse = await timeline.VoteAsync(message.VoteRequest, ct) });
                        break;
                    case ProposerMessage.BodyOneofCase.Elected:
                        await timeline.ElectedAsync(message.Elected, ct);
                        break;
                    case ProposerMessage.BodyOneofCase.StartWalAt:
                        await timeline.StartWalAtAsync(message.StartWalAt, ct);
                        break;
                    case ProposerMessage.BodyOneofCase.Append:
                        timeline.Append(message.Append);
                        firstAppend.TrySetResult();
                        break;
                    default:
                        throw new InvalidRequestException($"unexpected {message.BodyCase} message in a proposer conversation");
                }
                if (responder.IsFaulted) await responder; // surface a failed send
            }
        }
        catch (Exception e) when (Core.Storage.DiskFull.Is(e))
        {
            metrics.Refused();
            log.LogWarning("refused proposer {ProposerId} on {TenantId}/{TimelineId}: disk full: {Error}", proposer, timeline.Identity.TenantId, timeline.Identity.TimelineId, e.Message);
            throw DiskFullRefused(e);
        }
        catch (AcceptorRefusal refusal)
        {
            metrics.Refused();
            log.LogWarning("refused proposer {ProposerId} on {TenantId}/{TimelineId}: {Reason}", proposer, timeline.Identity.TenantId, timeline.Identity.TimelineId, refusal.Message);
            // A superseded proposer also learns the newer term in-band; the refusal (ABORTED) ends the call.
            if (refusal.Refusal == RefusalKind.Superseded)
                try { await SendAsync(new AcceptorMessage { AppendResponse = timeline.LatestAppendResponse() }); } catch (Exception) { /* peer gone */ }
            throw;
        }
        finally
        {
            stop.Cancel();
            try { await responder; } catch (OperationCanceledException) { } catch (Exception) { /* the stream is over anyway */ }
            metrics.ProposerStreamClosed();
            log.LogInformation("proposer {ProposerId} disconnected from {TenantId}/{TimelineId}", proposer, timeline.Identity.TenantId, timeline.Identity.TimelineId);
        }
    }

    private static async Task RespondToAppendsAsync(Timeline timeline, Task firstAppend, Func<AcceptorMessage, Task> send, CancellationToken ct)
    {
        await firstAppend.WaitAsync(ct);
        AppendResponse? last = null;
        while (!ct.IsCancellationRequested)
        {
            var changed = timeline.Changed;
            if (timeline.FlushError is { } error) throw new TemporarilyUnavailableException($"WAL flush failed: {error.Message}");
            var now = timeline.LatestAppendResponse();
            if (last is null || now.FlushLsn != last.FlushLsn || now.Term != last.Term)
            {
                await send(new AcceptorMessage { AppendResponse = now });
                last = now;
            }
            // Runs on the thread that signalled (usually the flusher): the ack goes out without a hop.
            await changed.WaitAsync(ct);
        }
    }

    /// <summary>Streams WAL from start_lsn: committed WAL for readers, flushed WAL for a proposer of the current term.</summary>
    [Allow(Scope.Pageserver, Scope.Compute)]
    public override async Task ReadWal(ReadWalRequest request, IServerStreamWriter<WalChunk> responses, ServerCallContext context)
    {
        var ct = context.CancellationToken;
        context.RequireTenant(request.Timeline?.TenantId ?? "");
        var timeline = registry.Get(request.Timeline);
        var position = new Lsn(request.StartLsn);
        var end = new Lsn(request.EndLsn);
        var (_, _, _, timelineStart) = timeline.Positions();
        if (position < timelineStart)
            throw new OutOfRangeException($"start_lsn {position} is before the timeline start {timelineStart}");
        metrics.ReadStreamOpened();
        try
        {
            var buffer = new byte[MaxReadChunk];
            var cursor = new WalReadCursor(timeline, position, request.ProposerTerm, end);
            while (!cursor.Finished)
            {
                var read = cursor.Read(buffer);
                if (read.Length > 0)
                {
                    await responses.WriteAsync(new WalChunk { StartLsn = read.Start.Value, Data = ByteString.CopyFrom(buffer, 0, read.Length), CommitLsn = read.Commit.Value }, ct);
                    continue;
                }
                // Off the signalling thread: reading and sending WAL must not hold up the flusher.
                await read.Changed.WaitAsync(ct).ConfigureAwait(ConfigureAwaitOptions.ForceYielding);
            }
        }
        finally { metrics.ReadStreamClosed(); }
    }
}
