using System.Formats.Tar;
using Storage.Core;
using Storage.Core.Storage;
using Storage.Core.Wal;
using Storage.Pageserver.Images;
using Storage.Pageserver.Remote;
using Storage.Pageserver.Wal;

namespace Storage.Pageserver.Tests;

/// <summary>Ingest, the segment index and the basebackup tar, on synthetic WAL in a temp dir.</summary>
public sealed class WalIngestTests : IDisposable
{
    private static readonly WalGeometry Geometry = WalGeometry.Default;
    private static readonly Lsn First = new(0x0100_0000); // a segment start: the decoder starts at its page header
    private readonly string _root = Directory.CreateTempSubdirectory("ps-ingest-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    /// <summary>WAL from <see cref="First"/>: a commit every few records, a block-touching record, spanning segments.</summary>
    private static (byte[] Bytes, List<(Lsn End, DateTimeOffset Time)> Commits, Lsn End) BuildWal(int segments)
    {
        var builder = new WalBuilder(First);
        var commits = new List<(Lsn, DateTimeOffset)>();
        var time = new DateTimeOffset(2026, 11, 1, 12, 0, 0, TimeSpan.Zero);
        uint xid = 1000;
        var rel = new RelFileNode(1663, 5, 16384);
        while (builder.EndLsn < new Lsn(0x0100_0000 + (ulong)segments * (ulong)Geometry.SegmentSize + 4096))
        {
            builder.AppendRecord((byte)ResourceManagerId.Heap, 0, xid, [new WalBlockSpec(rel, ForkNumber.Main, xid % 100) { Data = new byte[200] }], new byte[16]);
            builder.AppendNoop(3000);
            time = time.AddMilliseconds(10);
            var (_, end) = builder.AppendCommit(xid++, time);
            commits.Add((end, time));
        }
        return (builder.TakeBytes(), commits, builder.EndLsn);
    }

    [Fact]
    public void Ingest_writes_segment_layers_and_finishes_each_segment_with_its_commits_and_blocks()
    {
        var (wal, commits, end) = BuildWal(segments: 3);
        var firstRecordStart = First;
        using var store = new WalSegmentStore(Path.Combine(_root, "wal"), Geometry);
        var ingestor = new WalIngestor(store, firstRecordStart, firstRecordStart, Lsn.Zero);
        var finished = new List<FinishedSegment>();
        // Odd chunk sizes: records and page headers are cut anywhere.
        for (int offset = 0; offset < wal.Length;)
        {
            int n = Math.Min(7777, wal.Length - offset);
            finished.AddRange(ingestor.Ingest(firstRecordStart + (ulong)offset, wal.AsSpan(offset, n)));
            offset += n;
        }
        Assert.Equal(end, ingestor.IngestedLsn);
        Assert.Equal(3, finished.Count);
        Assert.Equal(new ulong[] { 1, 2, 3 }, finished.Select(f => f.Index.Segment));
        // Each finished segment resumes at the first record that starts after it.
        foreach (var f in finished) Assert.Equal(f.Index.Segment + 1, Geometry.SegmentNumber(f.ResumeFrom));
        var indexed = finished.SelectMany(f => f.Index.Commits).Concat(ingestor.Current.Commits).ToList();
        Assert.Equal(commits.Select(c => c.End), indexed.Select(c => c.End));
        Assert.Equal(commits.Select(c => c.Time), indexed.Select(c => c.Time));
        Assert.All(finished, f => Assert.Equal(100, f.Index.TouchedBlocks.Count));
        // Every record boundary is indexed, with the block each heap record touches.
        var starts = finished.SelectMany(f => f.Index.RecordStarts.Select(o => Geometry.SegmentStart(f.Index.Segment) + o)).ToList();
        Assert.Equal(finished.Sum(f => f.Index.RecordCount), starts.Count);
        Assert.All(commits.Where(c => Geometry.SegmentNumber(c.End) <= 3).Take(50), c =>
            Assert.True(finished.Any(f => f.Index.IsRecordStart(c.End, Geometry)) || ingestor.Current.IsRecordStart(c.End, Geometry)));
        var firstHeap = finished[0].Index;
        Assert.Equal([new BlockKey(new RelFileNode(1663, 5, 16384), ForkNumber.Main, 1000 % 100)], firstHeap.BlocksOf(0));

        // The layers hold exactly the bytes received.
        var back = new byte[wal.Length];
        store.Read(firstRecordStart, back);
        Assert.Equal(wal, back);
    }

    [Fact]
    public void Ingest_resumes_from_a_finished_segment_with_bytes_before_the_record_boundary()
    {
        var (wal, _, end) = BuildWal(segments: 2);
        var first = First;
        FinishedSegment resumeAfter;
        using (var store = new WalSegmentStore(Path.Combine(_root, "a"), Geometry))
        {
            var ingestor = new WalIngestor(store, first, first, Lsn.Zero);
            resumeAfter = ingestor.Ingest(first, wal).First();
        }
        // A restart fetches from the segment boundary but decodes from the first whole record after it.
        using var again = new WalSegmentStore(Path.Combine(_root, "b"), Geometry);
        var fetch = Geometry.SegmentStartOf(resumeAfter.ResumeFrom);
        var resumed = new WalIngestor(again, fetch, resumeAfter.ResumeFrom, resumeAfter.ResumePrev);
        resumed.Ingest(fetch, wal.AsSpan((int)(fetch - first)));
        Assert.Equal(end, resumed.IngestedLsn);
        Assert.Throws<InvalidOperationException>(() => resumed.Ingest(fetch, wal.AsSpan(0, 10))); // not where the stream stands
    }

    [Fact]
    public void Damaged_wal_is_refused_by_its_record_crc()
    {
        var (wal, _, _) = BuildWal(segments: 1);
        wal[5000] ^= 0x40;
        var first = First;
        using var store = new WalSegmentStore(Path.Combine(_root, "wal"), Geometry);
        var ingestor = new WalIngestor(store, first, first, Lsn.Zero);
        Assert.Throws<CorruptWalException>(() => ingestor.Ingest(first, wal));
    }

    /// <summary>Feeds <paramref name="wal"/> (which starts at <see cref="First"/>) from <paramref name="from"/> in chunks; the segments finished.</summary>
    private static List<FinishedSegment> Feed(WalIngestor ingestor, byte[] wal, Lsn from, int chunk, List<FinishedSegment>? finished = null)
    {
        finished ??= [];
        for (var at = from; at < First + (ulong)wal.Length;)
        {
            int n = (int)Math.Min(chunk, First + (ulong)wal.Length - at);
            finished.AddRange(ingestor.Ingest(at, wal.AsSpan((int)(at - First), n)));
            at += (ulong)n;
        }
        return finished;
    }

    private static List<WalRecord> Records(byte[] wal)
    {
        var decoder = new WalDecoder(First);
        decoder.Feed(wal);
        return decoder.DecodeAvailable().ToList();
    }

    /// <summary>A finished segment as text: where ingest resumes after it, and its whole index.</summary>
    private static string Describe(FinishedSegment f) => $"{f.Index.Segment} {f.ResumeFrom} {f.ResumePrev} {Convert.ToHexString(f.Index.Serialize())}";

    /// <summary>Byte arrays of WAL size are compared as spans (xunit's element by element comparison is slow).</summary>
    private static void AssertSameBytes(ReadOnlySpan<byte> expected, ReadOnlySpan<byte> actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        int at = expected.CommonPrefixLength(actual);
        Assert.True(at == expected.Length, $"the bytes differ first at offset {at}");
    }

    private static byte[] Layer(WalSegmentStore store, int length)
    {
        var bytes = new byte[length];
        store.Read(First, bytes);
        return bytes;
    }

    [Fact]
    public void Corrupt_wal_is_refused_and_rewound_to_the_last_whole_record_and_the_right_bytes_then_give_what_a_clean_run_gives()
    {
        var (wal, _, end) = BuildWal(segments: 2);
        using var cleanStore = new WalSegmentStore(Path.Combine(_root, "clean"), Geometry);
        var clean = new WalIngestor(cleanStore, First, First, Lsn.Zero);
        var cleanFinished = Feed(clean, wal, First, chunk: 7777);

        // A byte flipped inside a record of the second segment (the first one is finished before it).
        var records = Records(wal);
        int bad = records.FindIndex(r => r.Lsn > First + (ulong)Geometry.SegmentSize + 100_000 && r.TotalLength > 1000);
        var lastGood = records[bad - 1];
        var damaged = wal.ToArray();
        damaged[(int)(records[bad].Lsn - First) + 500] ^= 0x55;

        using var store = new WalSegmentStore(Path.Combine(_root, "rewound"), Geometry);
        var ingestor = new WalIngestor(store, First, First, Lsn.Zero);
        var finished = new List<FinishedSegment>();
        var error = Assert.Throws<CorruptWalException>(() => Feed(ingestor, damaged, First, chunk: 7777, finished));
        finished.AddRange(error.Finished);

        Assert.Equal(records[bad].Lsn, error.Lsn);
        Assert.Contains("CRC", error.Message);
        Assert.Equal(lastGood.EndLsn, ingestor.IngestedLsn);  // back at the end of the last whole valid record...
        Assert.Equal(lastGood.EndLsn, ingestor.NextByte);     // ...where the next bytes must start...
        Assert.Equal(lastGood.Lsn, ingestor.PrevRecordLsn);   // ...decoded with the right prev-link
        Assert.Equal(bad, ingestor.RecordCount);
        Assert.Equal([1UL], finished.Select(f => f.Index.Segment));
        // Nothing past it reached the layer: the damaged bytes were never written.
        var layer = Layer(store, wal.Length);
        int good = (int)(lastGood.EndLsn - First);
        AssertSameBytes(wal.AsSpan(0, good), layer.AsSpan(0, good));
        Assert.Equal(-1, layer.AsSpan(good).IndexOfAnyExcept((byte)0));

        // The same WAL, undamaged (from another safekeeper), from where it stopped: as if nothing happened.
        Feed(ingestor, wal, ingestor.NextByte, chunk: 5000, finished);
        Assert.Equal(end, ingestor.IngestedLsn);
        Assert.Equal(clean.RecordCount, ingestor.RecordCount);
        Assert.Equal(cleanFinished.Select(Describe), finished.Select(Describe));
        Assert.Equal(Convert.ToHexString(clean.Current.Serialize()), Convert.ToHexString(ingestor.Current.Serialize()));
        AssertSameBytes(wal, Layer(store, wal.Length));
    }

    /// <summary>WAL from <see cref="First"/> with a record that starts in segment 1 and ends in segment 2.</summary>
    private static (byte[] Bytes, Lsn End) BuildWalWithARecordAcrossASegmentStart()
    {
        var builder = new WalBuilder(First);
        var boundary = Geometry.SegmentStart(2);
        var time = new DateTimeOffset(2026, 11, 1, 12, 0, 0, TimeSpan.Zero);
        uint xid = 1000;
        while (builder.EndLsn + 4000L < boundary)
        {
            builder.AppendNoop(3000);
            builder.AppendCommit(xid++, time);
        }
        builder.AppendNoop(12_000);
        for (int i = 0; i < 20; i++)
        {
            builder.AppendNoop(500);
            builder.AppendCommit(xid++, time);
        }
        return (builder.TakeBytes(), builder.EndLsn);
    }

    [Fact]
    public void After_a_restart_the_tail_of_the_record_before_the_resume_point_is_checked_before_it_is_written()
    {
        var (wal, end) = BuildWalWithARecordAcrossASegmentStart();
        using var store = new WalSegmentStore(Path.Combine(_root, "wal"), Geometry);
        var resumeAfter = Feed(new WalIngestor(store, First, First, Lsn.Zero), wal, First, chunk: 7777).Single();
        var fetch = Geometry.SegmentStartOf(resumeAfter.ResumeFrom);
        Assert.True(resumeAfter.ResumePrev < fetch && resumeAfter.ResumeFrom - fetch > 1000, $"resume at {resumeAfter.ResumeFrom} after {resumeAfter.ResumePrev}");

        // A restart: segment 1 is finished (synced) on disk, segment 2's bytes were lost; the
        // safekeeper sends them again from its start, damaged inside that record's tail.
        store.Delete(2);
        var damaged = wal.ToArray();
        damaged[(int)(fetch - First) + 100] ^= 0x10;
        var resumed = new WalIngestor(store, fetch, resumeAfter.ResumeFrom, resumeAfter.ResumePrev);
        var error = Assert.Throws<CorruptWalException>(() => resumed.Ingest(fetch, damaged.AsSpan((int)(fetch - First))));

        Assert.Equal(resumeAfter.ResumePrev, error.Lsn);
        Assert.Equal(fetch, resumed.NextByte);
        Assert.Equal(resumeAfter.ResumeFrom, resumed.IngestedLsn);
        Assert.False(store.Has(2)); // not a byte of it written

        resumed.Ingest(fetch, wal.AsSpan((int)(fetch - First)));
        Assert.Equal(end, resumed.IngestedLsn);
        AssertSameBytes(wal, Layer(store, wal.Length));
    }

    [Fact]
    public void Segment_index_round_trips_and_a_flipped_byte_is_a_corrupt_file()
    {
        var index = new SegmentIndex { Segment = 7 };
        index.Commits.Add(new CommitPoint(new Lsn(0x700_0100), DateTimeOffset.UnixEpoch.AddTicks(17_000_000_000_123)));
        index.Checkpoints.Add(new CheckpointPoint(new Lsn(0x700_0200), new Lsn(0x6FF_0000), false));
        index.RecordStarts.AddRange([0x28, 0x100]);
        index.RecordBlockCounts.AddRange([1, 0]);
        index.RecordBlocks.Add(0);
        index.Blocks.Add(new BlockKey(new RelFileNode(1663, 5, 16384), ForkNumber.Fsm, 9));
        index.BlockLastLsns.Add(new Lsn(0x700_0028));
        var path = Path.Combine(_root, "x.index");
        index.Save(path);
        var back = SegmentIndex.Load(path);
        Assert.Equal(index.Commits, back.Commits);
        Assert.Equal(index.Checkpoints, back.Checkpoints);
        Assert.Equal(index.TouchedBlocks, back.TouchedBlocks);
        Assert.Equal(index.RecordStarts, back.RecordStarts);
        Assert.Equal(index.BlocksOf(0), back.BlocksOf(0));
        Assert.True(back.IsRecordStart(new Lsn(0x700_0100), WalGeometry.Default));
        Assert.False(back.IsRecordStart(new Lsn(0x700_0108), WalGeometry.Default));

        var bytes = File.ReadAllBytes(path);
        bytes[^3] ^= 1;
        File.WriteAllBytes(path, bytes);
        Assert.Throws<CorruptFileException>(() => SegmentIndex.Load(path));
    }

    [Fact]
    public async Task Basebackup_tar_has_the_image_files_and_wal_from_the_redo_segment_cut_at_the_lsn()
    {
        var (wal, commits, _) = BuildWal(segments: 2);
        var first = First;
        using var store = new WalSegmentStore(Path.Combine(_root, "wal"), Geometry);
        new WalIngestor(store, first, first, Lsn.Zero).Ingest(first, wal);

        // A tiny image: two files, one replay-only file and a stale WAL segment, all to be filtered.
        var imageTar = new MemoryStream();
        await using (var writer = new TarWriter(imageTar, leaveOpen: true))
        {
            foreach (var (name, text) in new[] { ("PG_VERSION", "15\n"), ("base/1/1234", "page"), ("standby.signal", ""), ("pg_wal/000000010000000000000001", "old") })
                await writer.WriteEntryAsync(new PaxTarEntry(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(System.Text.Encoding.ASCII.GetBytes(text)) });
        }
        imageTar.Position = 0;
        var cut = commits[^1].End;
        var image = new ImageLayer(first.Value, first.Value, ImageKind.Backup, imageTar.Length, 0, DateTime.UtcNow, 1);
        var output = new MemoryStream();
        await BasebackupWriter.WriteAsync(imageTar, image, store, cut, output, default);

        output.Position = 0;
        var entries = new Dictionary<string, byte[]>();
        await using (var reader = new TarReader(output))
            while (await reader.GetNextEntryAsync() is { } entry)
            {
                var data = new MemoryStream();
                entry.DataStream?.CopyTo(data);
                entries[entry.Name] = data.ToArray();
            }
        Assert.Contains("PG_VERSION", entries.Keys);
        Assert.Contains("base/1/1234", entries.Keys);
        Assert.DoesNotContain("standby.signal", entries.Keys);
        var segments = entries.Keys.Where(k => k.StartsWith("pg_wal/0", StringComparison.Ordinal)).Order().ToList();
        Assert.Equal(Enumerable.Range(1, (int)Geometry.SegmentNumber(cut)).Select(n => "pg_wal/" + Geometry.SegmentFileName(1, (ulong)n)), segments);
        var last = entries[segments[^1]];
        int cutOffset = Geometry.SegmentOffset(cut);
        Assert.Equal(cutOffset, last.Length);                                               // sent only up to the LSN
        Assert.All(segments[..^1], name => Assert.Equal(Geometry.SegmentSize, entries[name].Length));
        Assert.Equal(wal.AsSpan((int)(cut - first) - 64, 64).ToArray(), last.AsSpan(cutOffset - 64, 64).ToArray());

        // The reader pads it back to a whole segment of zeros after the LSN.
        var dataDirectory = Path.Combine(_root, "data");
        Directory.CreateDirectory(Path.Combine(dataDirectory, "pg_wal"));
        File.WriteAllBytes(Path.Combine(dataDirectory, segments[^1]), last);
        Storage.Core.Basebackup.DataDirectoryAssembler.PadWalSegments(dataDirectory);
        var padded = File.ReadAllBytes(Path.Combine(dataDirectory, segments[^1]));
        Assert.Equal(Geometry.SegmentSize, padded.Length);
        Assert.All(padded.AsSpan(cutOffset).ToArray(), b => Assert.Equal(0, b));
    }

    [Fact]
    public void Remote_keys_carry_the_generation_and_name_their_timeline()
    {
        var key = RemoteKeys.IndexPart("aa", "bb", 0x1F);
        Assert.EndsWith("index_part.json-0000001F", key);
        Assert.Equal(0x1FUL, RemoteKeys.GenerationOf(key));
        Assert.Null(RemoteKeys.GenerationOf(RemoteKeys.Layer("aa", "bb", "000000010000000000000001", 3)));
        Assert.Equal(("aa", "bb"), RemoteKeys.TimelineOf(key));
        Assert.Null(RemoteKeys.TimelineOf("tenants/aa/timelines/bb/wal/000000010000000000000001"));
    }
}
