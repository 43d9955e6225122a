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
/// proposer (no compute, no replay instance): damaged WAL on a safekeeper's disk, and a full disk.
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

    // ---- a full disk ----

    [Fact]
    public void A_segment_write_that_finds_the_disk_full_is_rewound_and_ingest_goes_on_once_there_is_space()
    {
        var root = Directory.CreateTempSubdirectory("ps-enospc-").FullName;
        try
        {
            using var disk = SmallDisk.Mount(megabytes: 16, Path.Combine(root, "disk"));
            var start = new Lsn(0x0100_0000);
            var builder = new WalBuilder(start);
            var source = new SyntheticTransactions(builder, new Random(3));
            var wal = source.Next(6 << 20);
            using var store = new WalSegmentStore(Path.Combine(disk.Path, "wal"), G);
            var ingestor = new WalIngestor(store, start, start, Lsn.Zero);
            disk.FillUp(leaveBytes: 2 << 20);

            IOException? full = null;
            for (int offset = 0; offset < wal.Length && full is null;)
            {
                int n = Math.Min(64 * 1024, wal.Length - offset);
                try { ingestor.Ingest(start + (ulong)offset, wal.AsSpan(offset, n)); offset += n; }
                catch (IOException e) { full = e; }
            }
            Assert.NotNull(full);
            Assert.True(Core.Storage.DiskFull.Is(full), full.ToString());
            // Rewound to the end of the last record written; the layer holds exactly that much.
            Assert.Equal(ingestor.IngestedLsn, ingestor.NextByte);
            int kept = (int)(ingestor.NextByte - start);
            Assert.InRange(kept, 1 << 20, 3 << 20);
            var layer = new byte[kept];
            store.Read(start, layer);
            AssertSameBytes(wal.AsSpan(0, kept), layer, "the layer");

            disk.Free();
            for (int offset = kept; offset < wal.Length;)
            {
                int n = Math.Min(64 * 1024, wal.Length - offset);
                ingestor.Ingest(start + (ulong)offset, wal.AsSpan(offset, n));
                offset += n;
            }
            Assert.Equal(builder.EndLsn, ingestor.IngestedLsn);
            var all = new byte[wal.Length];
            store.Read(start, all);
            AssertSameBytes(wal, all, "the layer");
        }
        finally { Directory.Delete(root, recursive: true); }
    }

    [Fact]
    public async Task Ingest_that_fills_the_disk_stops_clearly_corrupts_nothing_and_resumes_by_itself_when_space_returns()
    {
        var root = Directory.CreateTempSubdirectory("ps-full-").FullName;
        try
        {
            using var disk = SmallDisk.Mount(megabytes: 128, Path.Combine(root, "ps1")); // the pageserver's data directory
            await using var setup = await Setup.StartAsync(root, killPageserver: false);
            using var writing = new CancellationTokenSource();
            var writer = Task.Run(async () => { while (!writing.IsCancellationRequested) await setup.WriteAsync(128 * 1024); });
            try
            {
                await Eventually.ReachAsync(setup.InfoAsync, i => new Lsn(i.IngestedLsn) > setup.Start + 1_000_000L, Bounded, setup.Logs);

                // The disk fills up while WAL comes in: ingest stops with one clear error and a metric.
                disk.FillUp();
                await Eventually.ReachAsync(() => DiskFullMetricAsync(setup), full => full == 1, Bounded, setup.Logs);
                var stoppedAt = new Lsn((await setup.InfoAsync()).IngestedLsn);
                var ahead = await Eventually.ReachAsync(() => Task.FromResult(setup.Proposer.CommitLsn), c => c > stoppedAt + 3_000_000L, Bounded, setup.Logs);
                var whileFull = await setup.InfoAsync();
                Assert.True(new Lsn(whileFull.IngestedLsn) < ahead, $"ingested {new Lsn(whileFull.IngestedLsn)} on a full disk");
                // The log line is written by the logger's own thread, maybe after the metric shows.
                var errors = await Eventually.ReachAsync(() => Task.FromResult(DiskFullErrors(setup)), e => e.Count > 0, Bounded, setup.Logs);
                Assert.Single(errors);
                Assert.Contains($"disk full: ingest of {setup.TenantId}/{setup.TimelineId} stopped at", errors[0]);
                Assert.Contains("No space left on device", errors[0]);
                AssertNothingCorrupt(setup, new Lsn(whileFull.IngestedLsn));

                // Space comes back: ingest goes on by itself, and finishes the segment.
                disk.Free();
                await Eventually.ReachAsync(setup.InfoAsync, i => new Lsn(i.IngestedLsn) > ahead, Bounded, setup.Logs);
                var nextSegment = G.SegmentStart(G.SegmentNumber(setup.Start) + 1);
                await Eventually.ReachAsync(() => Task.FromResult(setup.Proposer.CommitLsn), c => c > nextSegment + 500_000L, Bounded, setup.Logs);
            }
            finally
            {
                await writing.CancelAsync();
                await writer;
            }
            await setup.WriteAsync(100);
            var committed = await setup.FlushedEverywhereAsync();
            var info = await setup.Pageserver.WaitForIngestAsync(setup.TenantId, setup.TimelineId, committed, Bounded);
            Assert.Equal(0, await DiskFullMetricAsync(setup));
            Assert.Single(DiskFullErrors(setup));
            var spaceBack = await Eventually.ReachAsync(
                () => Task.FromResult(File.ReadLines(setup.Pageserver.LogFile).Where(line => line.Contains("disk space is back: ingest of", StringComparison.Ordinal)).ToList()),
                lines => lines.Count > 0, Bounded, setup.Logs);
            Assert.Single(spaceBack);
            // At least the segment that was being written when the disk filled is finished (a starved
            // writer may have finished more before it saw the cancellation).
            Assert.True(AssertNothingCorrupt(setup, new Lsn(info.IngestedLsn)) >= 1);
        }
        finally { Directory.Delete(root, recursive: true); }
    }

    private static async Task<double> DiskFullMetricAsync(Setup setup)
    {
        using var http = new HttpClient();
        var text = await http.GetStringAsync(new Uri(setup.Pageserver.HttpUri, "/metrics"));
        var line = text.Split('\n').FirstOrDefault(l => l.StartsWith("pageserver_disk_full{", StringComparison.Ordinal)
            && l.Contains(setup.TimelineId, StringComparison.Ordinal) && l.Contains("activity=\"ingest\"", StringComparison.Ordinal));
        return line is null ? 0 : double.Parse(line[(line.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
    }

    private static List<string> DiskFullErrors(Setup setup) =>
        File.ReadLines(setup.Pageserver.LogFile).Where(line => line.Contains("disk full: ingest of", StringComparison.Ordinal)).ToList();

    /// <summary>Every persistent file of the timeline reads back whole, and the layers hold exactly the WAL sent; how many segments are finished.</summary>
    private static int AssertNothingCorrupt(Setup setup, Lsn ingested)
    {
        var paths = setup.Paths;
        var metadata = TimelineMetadata.Load(paths.Metadata);
        Assert.True(metadata.DecodeFrom <= ingested);
        var finished = AssertIndexesMatch(setup, ingested);
        var images = new Images.ImageCatalog(paths.Images).All;
        Assert.NotEmpty(images);
        foreach (var image in images) Assert.True(new FileInfo(Path.Combine(paths.Images, image.FileName)).Length == image.TarBytes);
        Assert.Empty(Directory.EnumerateFiles(paths.Root, "*.tmp", SearchOption.AllDirectories)); // no half-written temp file left
        int length = (int)(ingested - setup.Start);
        AssertSameBytes(setup.Sent().AsSpan(0, length), setup.Layer(length), "the pageserver's layer");
        return finished;
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
