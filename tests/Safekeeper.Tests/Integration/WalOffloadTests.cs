using System.Diagnostics;
using System.Text.Json;
using Storage.Core;
using Storage.Core.Wal;
using Storage.ObjectStore;
using Storage.Testing;

namespace Storage.Safekeeper.Tests.Integration;

/// <summary>
/// Finished WAL segments go to object storage, uploaded by one safekeeper per timeline (the lease
/// holder); when it is killed, another takes over and the backup LSN keeps advancing.
/// </summary>
public sealed class WalOffloadTests : IDisposable
{
    private static readonly TimeSpan Bounded = TimeSpan.FromSeconds(60);
    private readonly string _remote = Directory.CreateTempSubdirectory("remote-wal-").FullName;

    [Fact]
    public async Task Committed_segments_are_offloaded_once_and_another_safekeeper_takes_over()
    {
        await using var cluster = await SafekeeperCluster.StartAsync(extraArguments:
            ["--remote-storage", _remote, "--offload-interval-ms", "200", "--offload-lease-seconds", "2"]);
        await using var proposer = cluster.NewProposer();
        proposer.Start();
        var start = await proposer.WaitElectedAsync(new CancellationTokenSource(Bounded).Token);
        var source = new SyntheticTransactions(new WalBuilder(start), new Random(11));
        var geometry = WalGeometry.Default;

        async Task StreamPastAsync(Lsn target)
        {
            Lsn end = start;
            while (end < target) end = proposer.Append(source.Next(256 * 1024));
            await proposer.WaitForCommitAsync(end).WaitAsync(Bounded);
            proposer.Append(source.Next(100)); // carries the commit LSN to the safekeepers
        }

        // Three finished segments (the timeline starts at a segment start).
        await StreamPastAsync(geometry.SegmentStart(geometry.SegmentNumber(start) + 3) + 1000L);
        using var store = new LocalFsObjectStore(_remote);
        var prefix = $"tenants/{cluster.TenantId}/timelines/{cluster.TimelineId}/wal/";
        var expected = Enumerable.Range(0, 3).Select(i => geometry.SegmentFileName(1, geometry.SegmentNumber(start) + (ulong)i)).ToList();
        await WaitUntilAsync(async () => (await ListAsync(store, prefix)).Count(k => expected.Contains(k)) == 3, "three segments offloaded");

        // Byte for byte what the safekeepers hold (sk1 may be the member a quorum did not wait for: wait for its segments).
        await WaitUntilAsync(() => Task.FromResult(expected.All(name => File.Exists(Path.Combine(cluster.TimelineDir(0), name)))), "sk1 finished the three segments");
        foreach (var name in expected)
        {
            await using var remote = await store.GetAsync(prefix + name);
            var copy = new MemoryStream();
            await remote.CopyToAsync(copy);
            Assert.Equal(File.ReadAllBytes(Path.Combine(cluster.TimelineDir(0), name)), copy.ToArray());
        }
        // The offloader records its progress after each upload (and a slow round may hand the lease on): wait for it.
        var backedUp = geometry.SegmentStart(geometry.SegmentNumber(start) + 3).Value;
        ulong holder = 0;
        await WaitUntilAsync(async () =>
        {
            holder = await LeaseHolderAsync(store, prefix);
            return (await cluster.StatusAsync((int)holder - 1)).BackupLsn == backedUp;
        }, "the lease holder's backup LSN at the end of the third segment");

        // The offloader dies: after its lease runs out another safekeeper carries on.
        cluster.Kill((int)holder - 1);
        await StreamPastAsync(geometry.SegmentStart(geometry.SegmentNumber(start) + 4) + 1000L);
        var fourth = geometry.SegmentFileName(1, geometry.SegmentNumber(start) + 3);
        await WaitUntilAsync(async () => (await ListAsync(store, prefix)).Contains(fourth), "the fourth segment offloaded by another safekeeper");
        Assert.NotEqual(holder, await LeaseHolderAsync(store, prefix));
    }

    private static async Task<List<string>> ListAsync(IObjectStore store, string prefix)
    {
        var keys = new List<string>();
        await foreach (var o in store.ListAsync(prefix)) keys.Add(o.Key[prefix.Length..]);
        return keys;
    }

    private static async Task<ulong> LeaseHolderAsync(IObjectStore store, string prefix)
    {
        await using var lease = await store.GetAsync(prefix + "offloader.json");
        using var doc = await JsonDocument.ParseAsync(lease);
        return doc.RootElement.GetProperty("NodeId").GetUInt64();
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!await condition())
        {
            if (clock.Elapsed > Bounded) throw new TimeoutException($"not within {Bounded.TotalSeconds:0} s: {what}");
            await Task.Delay(200);
        }
    }

    public void Dispose()
    {
        try { Directory.Delete(_remote, recursive: true); } catch (IOException) { }
    }
}
