using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Storage.Core;
using Storage.Core.Api;
using Grpc.Core;
using Storage.Core.Rpc;
using Storage.Core.Wal;
using Storage.Proposer;
using Storage.Safekeeper.Tests.Storage;
using Storage.Testing;

namespace Storage.Safekeeper.Tests.Integration;

/// <summary>A real safekeeper process runs out of disk under a proposer: it refuses clearly, loses nothing, and resumes.</summary>
[Collection("processes")]
public class DiskFullTests
{
    private static readonly TimeSpan Bounded = TimeSpan.FromSeconds(60);
    private static readonly WalGeometry G = WalGeometry.Default;

    [Fact]
    public async Task A_full_disk_refuses_the_proposer_loses_nothing_acknowledged_and_commits_resume_when_space_is_back()
    {
        await using var cluster = await SafekeeperCluster.StartAsync(createTimeline: false);
        // Safekeeper 1's data directory becomes a 40 MiB disk (mounted under the running process).
        using var disk = SmallDisk.Mount(40, cluster.DataDir(0));
        var log = new CapturingLogger();
        try
        {
            for (int i = 0; i < 3; i++)
                await SafekeeperClient.CreateTimelineAsync(cluster.Uris[i], cluster.Key, SafekeeperCluster.TimelineStart, timeout: SafekeeperCluster.CreateTimeout);
            cluster.Kill(2); // from here every commit needs safekeeper 1
            var filler = disk.AddFiller(12 << 20); // one 16 MiB segment fits, a second does not

            await using var proposer = new WalProposer(new WalProposerOptions { TenantId = cluster.TenantId, TimelineId = cluster.TimelineId, Safekeepers = cluster.Uris }, log);
            proposer.Start();
            var start = await proposer.WaitElectedAsync(new CancellationTokenSource(Bounded).Token);
            var source = new SyntheticTransactions(new WalBuilder(start), new Random(9));
            var streamed = new MemoryStream();
            Lsn Append(int bytes)
            {
                var wal = source.Next(bytes);
                streamed.Write(wal);
                return proposer.Append(wal);
            }

            // Nearly fill segment 1; all of it commits.
            var segment2 = G.SegmentStart(G.SegmentNumber(start) + 1);
            var end = start;
            while (end + 512UL * 1024 < segment2) end = Append(64 * 1024);
            await proposer.WaitForCommitAsync(end).WaitAsync(Bounded);

            // WAL that needs segment 2: safekeeper 1 cannot preallocate it and refuses the proposer.
            var blocked = Append(1024 * 1024);
            await Eventually.ReachAsync(() => Task.FromResult(log.Messages.Any(m => m.Contains("ResourceExhausted") && m.Contains("disk full on safekeeper 1:"))), seen => seen,
                Bounded, () => string.Join("\n", log.Messages.TakeLast(20)) + "\n" + cluster.Logs());
            Assert.True(proposer.CommitLsn < segment2, $"commit {proposer.CommitLsn} went past what safekeeper 1 could hold");
            Assert.True(proposer.CommitLsn >= end);

            // Everything it acknowledged is there, byte for byte.
            var status = await cluster.StatusAsync(0);
            var acked = proposer.SafekeeperFlushLsns[0];
            Assert.True(new Lsn(status.FlushLsn) >= acked, $"safekeeper 1 flush {new Lsn(status.FlushLsn)} is behind what it acknowledged, {acked}");
            var held = await ReadWalAsync(cluster, proposer, start, acked);
            Assert.Equal(streamed.ToArray().Take((int)(acked - start)), held);
            // The half-made segment's space is given back. The proposer keeps retrying, and each try
            // makes the file again until the disk refuses it: between tries there is none.
            await Eventually.ReachAsync(() => Task.FromResult(Directory.EnumerateFiles(cluster.TimelineDir(0), "*.init").Count()), n => n == 0,
                Bounded, () => "a half-made preallocation stays on the full disk\n" + cluster.Logs());

            // Nor does a SIGKILL while the disk is still full lose any of it.
            cluster.Kill(0);
            await cluster.StartAsync(0);
            status = await cluster.StatusAsync(0);
            Assert.True(new Lsn(status.FlushLsn) >= acked, $"restarted safekeeper 1 flush {new Lsn(status.FlushLsn)} is behind what it acknowledged, {acked}");
            Assert.Equal(held, await ReadWalAsync(cluster, proposer, start, acked));

            // Space is back: the proposer's next connection gets through and commits resume.
            File.Delete(filler);
            end = Append(64 * 1024);
            await proposer.WaitForCommitAsync(end).WaitAsync(Bounded);
            Assert.True(end > blocked);
            await Eventually.ReachAsync(() => cluster.StatusAsync(0), s => new Lsn(s.FlushLsn) >= end, Bounded, cluster.Logs);
            var all = await ReadWalAsync(cluster, proposer, start, end);
            Assert.True(streamed.ToArray().AsSpan().SequenceEqual(all), "safekeeper 1 holds different WAL");
        }
        finally
        {
            cluster.Kill(0); // it holds files on the small disk, which is unmounted next
        }
    }

    private static async Task<byte[]> ReadWalAsync(SafekeeperCluster cluster, WalProposer proposer, Lsn from, Lsn to)
    {
        var channel = cluster.Uris[0];
        var bytes = new MemoryStream();
        await SafekeeperClient.ReadWalAsync(channel, cluster.Key, from, to, proposer.Term, bytes, Bounded);
        return bytes.ToArray();
    }

    /// <summary>Keeps what the proposer logs (its links log why a safekeeper ended the stream).</summary>
    private sealed class CapturingLogger : ILogger
    {
        private readonly ConcurrentQueue<string> _messages = new();
        public IReadOnlyCollection<string> Messages => _messages;
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => true;
        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            _messages.Enqueue(formatter(state, exception));
    }
}
