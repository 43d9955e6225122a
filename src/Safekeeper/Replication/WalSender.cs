using System.Buffers;
using System.IO.Pipelines;
using Storage.Core;
using Storage.Core.Postgres.Replication;
using Storage.Core.Postgres.Wire;

namespace Storage.Safekeeper.Replication;

/// <summary>How a walsender paces itself: keepalives when idle, and how long a silent standby is kept.</summary>
internal sealed record WalSenderSettings
{
    /// <summary>An idle stream gets a keepalive asking for a reply this often (PostgreSQL's walreceiver gives up after 60 s of silence).</summary>
    public TimeSpan KeepaliveInterval { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>A standby that sends nothing for this long is dropped (PostgreSQL's wal_sender_timeout).</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(60);
}

/// <summary>How a stream ended: the client's CopyDone (the session goes on) or its Terminate or close.</summary>
internal enum StreamEnd { CopyDone, Terminated }

/// <summary>
/// The CopyBoth phase of START_REPLICATION: sends the timeline's committed WAL from a start position
/// as XLogData (never past commit_lsn: a <see cref="WalReadCursor"/> hands out nothing more), follows
/// the commit LSN as it advances (woken by the timeline's change signal), sends keepalives when idle,
/// and reads the standby's status updates and hot standby feedback beside it.
/// </summary>
internal sealed class WalSender(IReadableWal wal, PipeReader input, PipeWriter output, StandbyProgress progress, WalSenderSettings settings, TimeProvider time)
{
    /// <summary>WAL per XLogData message, as PostgreSQL's walsender (MAX_SEND_SIZE is 16 pages).</summary>
    public const int MaxChunk = 128 * 1024;

    private long _lastHeard;
    private volatile bool _replyWanted;
    private TaskCompletionSource _heard = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Streams until the client ends the copy or goes; throws <see cref="ReplicationError"/> for what ends it badly.</summary>
    public async Task<StreamEnd> StreamAsync(Lsn start, CancellationToken ct)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        _lastHeard = time.GetTimestamp();
        var client = ReadClientAsync(stop.Token);
        try
        {
            var cursor = new WalReadCursor(wal, start);
            var buffer = new byte[MaxChunk];
            long lastSent = time.GetTimestamp();
            while (!client.IsCompleted)
            {
                var read = cursor.Read(buffer);
                if (read.Length > 0)
                {
                    ReplicationMessages.WriteXLogDataHeader(output, read.Start, read.Commit, time.GetUtcNow().UtcDateTime, read.Length);
                    output.Write(buffer.AsSpan(0, read.Length));
                    await output.FlushAsync(ct);
                    progress.WalSent(cursor.Position);
                    lastSent = time.GetTimestamp();
                    continue;
                }
                var idle = time.GetElapsedTime(lastSent);
                if (_replyWanted || idle >= settings.KeepaliveInterval)
                {
                    // Asked by the standby: answered at once; idle: a reply is asked for, which tells us it is alive.
                    bool ask = !_replyWanted;
                    _replyWanted = false;
                    ReplicationMessages.WriteKeepalive(output, read.Commit, time.GetUtcNow().UtcDateTime, replyRequested: ask);
                    await output.FlushAsync(ct);
                    lastSent = time.GetTimestamp();
                    idle = TimeSpan.Zero;
                }
                var silent = time.GetElapsedTime(Interlocked.Read(ref _lastHeard));
                if (silent >= settings.Timeout)
                    throw new ReplicationError(SqlStates.ProtocolViolation, $"terminating the stream: the standby sent nothing for {silent.TotalSeconds:F0} s", fatal: true, reason: "timeout");
                var wake = Min(settings.KeepaliveInterval - idle, settings.Timeout - silent);
                using var timer = CancellationTokenSource.CreateLinkedTokenSource(ct);
                var delay = Task.Delay(wake, time, timer.Token);
                // Off the signalling thread (the timeline's flusher): sending must not hold it up.
                await ((Task)Task.WhenAny(read.Changed, client, _heard.Task, delay)).ConfigureAwait(ConfigureAwaitOptions.ForceYielding);
                timer.Cancel();
                ct.ThrowIfCancellationRequested();
            }
            return await client;
        }
        finally
        {
            stop.Cancel();
            try { await client; } catch (Exception) { /* surfaced above when it mattered */ }
        }
    }

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    /// <summary>The standby's side of the copy: status updates and feedback until CopyDone, Terminate or close.</summary>
    private async Task<StreamEnd> ReadClientAsync(CancellationToken ct)
    {
        while (true)
        {
            var next = await PgFraming.ReadAsync(input, ct);
            if (next is null) return StreamEnd.Terminated;
            var (message, consumed) = next.Value;
            try
            {
                Interlocked.Exchange(ref _lastHeard, time.GetTimestamp());
                switch (message.Type)
                {
                    case (byte)'c': return StreamEnd.CopyDone;
                    case (byte)'X': return StreamEnd.Terminated;
                    case (byte)'d':
                        Handle(message);
                        break;
                    default:
                        throw ReplicationError.Protocol($"invalid standby message type \"{(char)message.Type}\"");
                }
            }
            catch (InvalidDataException e) { throw ReplicationError.Protocol(e.Message); }
            finally { input.AdvanceTo(consumed); }
            var heard = Interlocked.Exchange(ref _heard, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
            heard.TrySetResult();
        }
    }

    private void Handle(in PgMessage message)
    {
        switch (ReplicationMessages.Kind(message.Body))
        {
            case (byte)'r':
                var status = ReplicationMessages.ReadStandbyStatus(message.Body);
                progress.StatusReceived(status);
                if (status.ReplyRequested) _replyWanted = true;
                break;
            case (byte)'h':
                progress.FeedbackReceived(ReplicationMessages.ReadHotStandbyFeedback(message.Body));
                break;
            case var kind:
                throw ReplicationError.Protocol($"unexpected message type \"{(char)kind}\" in the standby's stream");
        }
    }
}
