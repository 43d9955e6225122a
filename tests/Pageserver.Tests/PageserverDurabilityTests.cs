using Storage.Core;
using Storage.Core.Postgres;
using Storage.Core.Wal;
using Storage.ObjectStore;
using Storage.Pageserver.Remote;
using Storage.Pageserver.Timelines;
using Storage.Pageserver.Wal;
using Storage.Proposer;
using Storage.Proto.Pageserver;
using Storage.Testing;

namespace Storage.Pageserver.Tests;

/// <summary>
/// The pageserver as a real process between three real safekeepers, fed synthetic WAL by a
/// proposer (no compute, no replay instance): damaged WAL on a safekeeper's disk.
/// </summary>
public sealed class PageserverDurabilityTests
{
    private static readonly TimeSpan Bounded = TimeSpan.FromSeconds(120);
    private static readonly WalGeometry G = WalGeometry.Default;

    /// <summary>A timeline on three safekeepers and a pageserver (replay off), and a proposer elected on it.</summary>
    private sealed class Setup : IAsyncDisposable
    {
        public required SafekeeperCluster Safekeepers { get; init; }
        public required PageserverNode Pageserver { get; init; }
        public required WalProposer Proposer { get; init; }
        public required TimelineMetadata Created { get; init; }
        public required SyntheticTransactions Source { get; init; }
        private readonly MemoryStream _sent = new(); // every WAL byte sent, from the timeline start
        public Lsn End { get; private set; }
        public string TenantId => Safekeepers.TenantId;
        public string TimelineId => Safekeepers.TimelineId;
        public Lsn Start => Created.Start;
        public TimelinePaths Paths => TimelinePaths.For(Pageserver.DataDirectory, TenantId, TimelineId);

        public static async Task<Setup> StartAsync(string pageserverRoot, bool killPageserver)
        {
            var safekeepers = await SafekeeperCluster.StartAsync(createTimeline: false);
            PageserverNode? pageserver = null;
            try
            {
                pageserver = await PageserverNode.StartAsync(pageserverRoot, safekeepers.Uris, ["--replay", "false"]);
                await pageserver.CreateTimelineAsync(safekeepers.TenantId, safekeepers.TimelineId);
                var created = TimelineMetadata.Load(TimelinePaths.For(pageserver.DataDirectory, safekeepers.TenantId, safekeepers.TimelineId).Metadata);
                if (killPageserver) await pageserver.KillAsync();
                var proposer = safekeepers.NewProposer();
                proposer.Start();
                using var election = new CancellationTokenSource(Bounded);
                var elected = await proposer.WaitElectedAsync(election.Token);
                Assert.Equal(created.Start, elected);
                // The timeline's own WAL continues initdb's: same system, prev-link to its checkpoint.
                var builder = new WalBuilder(created.Start, created.SystemIdentifier, previousRecord: created.DecodePrev);
                return new Setup
                {
                    Safekeepers = safekeepers, Pageserver = pageserver, Proposer = proposer, Created = created,
                    Source = new SyntheticTransactions(builder, new Random(17)), End = created.Start,
                };
            }
            catch
            {
                if (pageserver is not null) await pageserver.DisposeAsync();
                await safekeepers.DisposeAsync();
                throw;
            }
        }

        /// <summary>Appends about <paramref name="bytes"/> of WAL and waits for its commit.</summary>
        public async Task<Lsn> WriteAsync(int bytes)
        {
            var wal = Source.Next(bytes);
            lock (_sent) _sent.Write(wal);
            End = Proposer.Append(wal);
            return await Proposer.WaitForCommitAsync(End).WaitAsync(Bounded);
        }

        /// <summary>Waits until every safekeeper has WAL up to <see cref="End"/> on disk; the lowest commit LSN they know.</summary>
        public async Task<Lsn> FlushedEverywhereAsync()
        {
            var statuses = await Task.WhenAll(Enumerable.Range(0, 3).Select(i => Eventually.ReachAsync(() => Safekeepers.StatusAsync(i),
                s => new Lsn(s.FlushLsn) >= End, Bounded, Logs)));
            return new Lsn(statuses.Min(s => s.CommitLsn));
        }

        public Task<TimelineInfo> InfoAsync() => Pageserver.TimelineAsync(TenantId, TimelineId);

        /// <summary>The pageserver's segment layers from the timeline start, <paramref name="length"/> bytes.</summary>
        public byte[] Layer(long length)
        {
            using var store = new WalSegmentStore(Paths.Wal, G);
            var bytes = new byte[length];
            store.Read(Start, bytes);
            return bytes;
        }

        /// <summary>Every WAL byte sent so far, from the timeline start.</summary>
        public byte[] Sent()
        {
            lock (_sent) return _sent.ToArray();
        }

        /// <summary>The WAL sent, decoded.</summary>
        public List<WalRecord> SentRecords()
        {
            var decoder = new WalDecoder(Start, G, Created.DecodePrev);
            decoder.Feed(Sent());
            return decoder.DecodeAvailable().ToList();
        }

        public string Logs() => Safekeepers.Logs() + "\n--- pageserver\n" + Pageserver.Logs();

        public async ValueTask DisposeAsync()
        {
            await Proposer.DisposeAsync();
            await Pageserver.DisposeAsync();
            await Safekeepers.DisposeAsync();
        }
    }

    private static void AssertSameBytes(ReadOnlySpan<byte> expected, ReadOnlySpan<byte> actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        int at = expected.CommonPrefixLength(actual);
        Assert.True(at == expected.Length, $"{what} differs from the WAL sent at offset {at}");
    }

    /// <summary>Every finished segment's index loads, and lists exactly the records the WAL sent starts in it; how many there are.</summary>
    private static int AssertIndexesMatch(Setup setup, Lsn ingested)
    {
        var records = setup.SentRecords().Where(r => r.EndLsn <= ingested).ToList();
        var indexes = Directory.EnumerateFiles(setup.Paths.Wal, "*.index").Select(SegmentIndex.Load).ToList();
        foreach (var index in indexes)
            Assert.Equal(records.Where(r => G.SegmentNumber(r.Lsn) == index.Segment).Select(r => (uint)G.SegmentOffset(r.Lsn)), index.RecordStarts);
        return indexes.Count;
    }

    [Fact]
    public async Task Wal_damaged_on_one_safekeepers_disk_is_refused_and_the_pageserver_ingests_the_right_wal_from_the_others()
    {
        var root = Directory.CreateTempSubdirectory("ps-corrupt-").FullName;
        try
        {
            await using var setup = await Setup.StartAsync(root, killPageserver: true); // it reads nothing until the damage is done
            // More than a segment, so a segment is finished and uploaded.
            while (setup.End < G.SegmentStart(G.SegmentNumber(setup.Start) + 1) + 1_000_000L) await setup.WriteAsync(256 * 1024);
            await setup.WriteAsync(100); // carries the commit LSN of the WAL before it to the safekeepers
            var committed = await setup.FlushedEverywhereAsync();

            // sk1's copy of one committed record gets four bytes flipped inside the record.
            var records = setup.SentRecords();
            var bad = records.First(r => r.Lsn >= setup.Start + 200_000L && r.TotalLength >= 1000 && G.PageOffset(r.Lsn) < WalGeometry.PageSize - 200);
            Assert.True(bad.EndLsn < committed);
            FlipBytes(setup.Safekeepers.TimelineDir(0), bad.Lsn + 100L, 4);

            // Only sk1 answers at first: the pageserver must read the damaged copy.
            var others = new[] { 1, 2 }.Select(i => setup.Safekeepers.Pid(i)!.Value).ToList();
            foreach (var pid in others) OsUser.Signal(pid, OsUser.SigStop);
            try
            {
                await setup.Pageserver.StartAsync();
                var sk1 = setup.Safekeepers.Uris[0].ToString();
                await Eventually.ReachAsync(() => Task.FromResult(File.ReadAllText(setup.Pageserver.LogFile)),
                    log => log.Contains($"from safekeeper {sk1} is corrupt at {bad.Lsn}", StringComparison.Ordinal), Bounded, setup.Logs);
                Assert.Contains("invalid record CRC", File.ReadAllText(setup.Pageserver.LogFile));
                Assert.True(new Lsn((await setup.InfoAsync()).IngestedLsn) <= bad.Lsn, "ingested past the damaged record");
            }
            finally { foreach (var pid in others) OsUser.Signal(pid, OsUser.SigCont); }

            // From the other two: the right WAL, byte for byte, in the layers and in object storage.
            var info = await setup.Pageserver.WaitForIngestAsync(setup.TenantId, setup.TimelineId, committed, Bounded);
            var ingested = new Lsn(info.IngestedLsn);
            var sent = setup.Sent();
            int length = (int)(ingested - setup.Start);
            AssertSameBytes(sent.AsSpan(0, length), setup.Layer(length), "the pageserver's layer");
            Assert.Equal(1, AssertIndexesMatch(setup, ingested));
            var firstSegmentEnd = G.SegmentStart(G.SegmentNumber(setup.Start) + 1);
            info = await Eventually.ReachAsync(setup.InfoAsync, i => new Lsn(i.RemoteConsistentLsn) >= firstSegmentEnd, Bounded, setup.Logs);
            using (var metrics = new HttpClient())
                Assert.Contains("pageserver_wal_corrupt_total", await metrics.GetStringAsync(new Uri(setup.Pageserver.HttpUri, "/metrics")));
            await setup.Pageserver.DisposeAsync(); // before the object store is opened (it clears temp files)

            using var remote = new LocalFsObjectStore(setup.Pageserver.RemoteStorage);
            var name = G.SegmentFileName(1, G.SegmentNumber(setup.Start));
            await using var uploaded = await remote.GetAsync(RemoteKeys.Layer(setup.TenantId, setup.TimelineId, name, info.Generation));
            using var copy = new MemoryStream();
            await uploaded.CopyToAsync(copy);
            var offset = G.SegmentOffset(setup.Start);
            AssertSameBytes(sent.AsSpan(0, G.SegmentSize - offset), copy.ToArray().AsSpan(offset), "the uploaded segment");
        }
        finally { Directory.Delete(root, recursive: true); }
    }

    /// <summary>Flips <paramref name="count"/> bytes at <paramref name="lsn"/> in a safekeeper's segment file (finished or partial).</summary>
    private static void FlipBytes(string timelineDirectory, Lsn lsn, int count)
    {
        var name = G.SegmentFileName(1, G.SegmentNumber(lsn));
        var path = new[] { name, name + ".partial" }.Select(n => Path.Combine(timelineDirectory, n)).First(File.Exists);
        using var file = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
        var bytes = new byte[count];
        file.Position = G.SegmentOffset(lsn);
        file.ReadExactly(bytes);
        for (int i = 0; i < count; i++) bytes[i] ^= 0xA5;
        file.Position = G.SegmentOffset(lsn);
        file.Write(bytes);
    }
}
