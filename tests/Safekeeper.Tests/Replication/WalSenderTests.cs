using System.Buffers;
using System.IO.Pipelines;
using Storage.Core;
using Storage.Core.Postgres.Replication;
using Storage.Core.Postgres.Wire;
using Storage.Safekeeper.Replication;

namespace Storage.Safekeeper.Tests.Replication;

/// <summary>The walsender's CopyBoth phase against an in-memory timeline whose flushed WAL runs past its commit LSN.</summary>
public class WalSenderTests
{
    private static readonly TimeSpan Bounded = TimeSpan.FromSeconds(10);
    private static readonly Lsn Start = new(0x0100_0000);

    /// <summary>A timeline's WAL in memory: flushed up to <see cref="Flush"/>, committed up to what the test says.</summary>
    private sealed class MemoryWal(byte[] wal) : IReadableWal
    {
        private readonly object _lock = new();
        private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private Lsn _commit = Start;
        public Lsn Flush => Start + (ulong)wal.Length;
        public Task Changed { get { lock (_lock) return _changed.Task; } }
        public Lsn LocalStartLsn => Start;
        public (ulong Term, Lsn Flush, Lsn Commit, Lsn TimelineStart) Positions() { lock (_lock) return (1, Flush, _commit, Start); }

        public int ReadWal(Lsn from, Span<byte> buffer)
        {
            int n = (int)Math.Min(buffer.Length, Flush - from);
            wal.AsSpan((int)(from - Start), n).CopyTo(buffer);
            return n;
        }

        public void Commit(Lsn lsn)
        {
            TaskCompletionSource old;
            lock (_lock) { _commit = lsn; old = _changed; _changed = new(TaskCreationOptions.RunContinuationsAsynchronously); }
            old.TrySetResult();
        }
    }

    private sealed class Harness : IAsyncDisposable
    {
        public readonly Pipe ToSender = new(), FromSender = new();
        public readonly MemoryWal Wal;
        public readonly StandbyProgress Progress = new(new SafekeeperMetrics(), new StandbyLabel("t", "tl", "test"));
        public readonly Task<StreamEnd> Streaming;
        private readonly CancellationTokenSource _stop = new(TimeSpan.FromSeconds(60));

        public Harness(byte[] wal, WalSenderSettings? settings = null)
        {
            Wal = new MemoryWal(wal);
            var sender = new WalSender(Wal, ToSender.Reader, FromSender.Writer, Progress, settings ?? new WalSenderSettings(), TimeProvider.System);
            Streaming = Task.Run(() => sender.StreamAsync(Start, _stop.Token));
        }

        /// <summary>The next CopyData payload the sender wrote (its kind byte first).</summary>
        public async Task<byte[]> NextAsync()
        {
            var next = await PgFraming.ReadAsync(FromSender.Reader, new CancellationTokenSource(Bounded).Token) ?? throw new EndOfStreamException();
            var (message, consumed) = next;
            try
            {
                Assert.Equal((byte)'d', message.Type);
                return message.Body.ToArray();
            }
            finally { FromSender.Reader.AdvanceTo(consumed); }
        }

        public async Task SendAsync(Action<IBufferWriter<byte>> write)
        {
            write(ToSender.Writer);
            await ToSender.Writer.FlushAsync();
        }

        public async ValueTask DisposeAsync()
        {
            _stop.Cancel();
            try { await Streaming; } catch (Exception) { }
            Progress.Dispose();
        }
    }

    private static byte[] Wal(int length)
    {
        var bytes = new byte[length];
        new Random(3).NextBytes(bytes);
        return bytes;
    }

    /// <summary>Receives XLogData up to <paramref name="until"/>, checking each piece against the WAL and the commit LSN it was sent under.</summary>
    private static async Task<Lsn> ReceiveUntilAsync(Harness h, byte[] wal, Lsn from, Lsn until, Lsn commit)
    {
        var position = from;
        while (position < until)
        {
            var payload = await h.NextAsync();
            if (payload[0] == (byte)'k') continue;
            var data = ReplicationMessages.ReadXLogData(new ReadOnlySequence<byte>(payload));
            Assert.Equal(position, data.Start);
            var end = data.Start + (ulong)data.Data.Length;
            Assert.True(end <= commit, $"sent WAL up to {end}, beyond the commit LSN {commit}");
            Assert.Equal(commit, data.ServerEnd);
            Assert.True(wal.AsSpan((int)(data.Start - Start), (int)data.Data.Length).SequenceEqual(data.Data.ToArray()), $"WAL at {data.Start} differs");
            position = end;
        }
        return position;
    }

    [Fact]
    public async Task Only_committed_WAL_is_sent_and_more_follows_as_the_commit_LSN_advances()
    {
        var wal = Wal(1024 * 1024); // all flushed; commit moves in steps that do not fall on message boundaries
        await using var h = new Harness(wal);
        var commit1 = Start + 300_001L;
        h.Wal.Commit(commit1);
        var at = await ReceiveUntilAsync(h, wal, Start, commit1, commit1);
        Assert.Equal(commit1, at);

        var commit2 = Start + 700_003L;
        h.Wal.Commit(commit2);
        at = await ReceiveUntilAsync(h, wal, at, commit2, commit2);
        Assert.Equal(commit2, at);

        // The standby ends the copy: the sender stops and says so; it never sent past commit2.
        await h.SendAsync(w => w.Write(new byte[] { (byte)'c', 0, 0, 0, 4 }));
        Assert.Equal(StreamEnd.CopyDone, await h.Streaming.WaitAsync(Bounded));
        Assert.Equal(commit2, h.Progress.Sent);
        h.FromSender.Writer.Complete();
        while (await PgFraming.ReadAsync(h.FromSender.Reader, CancellationToken.None) is { } left)
        {
            var (message, consumed) = left;
            var body = message.Body.ToArray();
            h.FromSender.Reader.AdvanceTo(consumed);
            Assert.False(body[0] == (byte)'w', "XLogData after the commit LSN stopped moving");
        }
    }

    [Fact]
    public async Task An_idle_stream_gets_keepalives_asking_for_a_reply_and_the_standbys_status_is_recorded()
    {
        await using var h = new Harness(Wal(8192), new WalSenderSettings { KeepaliveInterval = TimeSpan.FromMilliseconds(100) });
        var keepalive = ReplicationMessages.ReadKeepalive(new ReadOnlySequence<byte>(await h.NextAsync()));
        Assert.True(keepalive.ReplyRequested);
        Assert.Equal(Start, keepalive.ServerEnd); // nothing committed yet

        var status = new StandbyStatus(Start + 10L, Start + 8L, Start + 4L, DateTime.UtcNow, ReplyRequested: false);
        await h.SendAsync(w => ReplicationMessages.WriteStandbyStatus(w, status));
        await h.SendAsync(w => w.Write(HotStandbyFeedbackMessage(xmin: 1234)));
        await Testing.Eventually.ReachAsync(() => Task.FromResult(h.Progress.LastFeedback), f => f is not null, Bounded, () => "no feedback recorded");
        Assert.Equal(status.Flush, h.Progress.LastStatus!.Value.Flush);
        Assert.Equal(status.Apply, h.Progress.LastStatus!.Value.Apply);
        Assert.Equal(1234u, h.Progress.LastFeedback!.Value.Xmin);
    }

    [Fact]
    public async Task A_malformed_standby_message_ends_the_stream_with_a_protocol_violation()
    {
        await using var h = new Harness(Wal(8192));
        await h.SendAsync(w => w.Write(new byte[] { (byte)'d', 0, 0, 0, 6, (byte)'r', 1 })); // a status update of 2 bytes
        var error = await Assert.ThrowsAsync<ReplicationError>(() => h.Streaming.WaitAsync(Bounded));
        Assert.Equal(SqlStates.ProtocolViolation, error.SqlState);
        Assert.Contains("standby status update", error.Message);
    }

    private static byte[] HotStandbyFeedbackMessage(uint xmin)
    {
        var bytes = new byte[1 + 4 + 1 + 8 + 4 * 4];
        bytes[0] = (byte)'d';
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(1), bytes.Length - 1);
        bytes[5] = (byte)'h';
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(14), xmin);
        return bytes;
    }
}
