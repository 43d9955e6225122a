using Storage.Core;
using Storage.Core.Api;
using Grpc.Core;
using Storage.Proto.Compute;
using Storage.Proto.Pageserver;
using Storage.Testing;

namespace Storage.Pageserver.Tests;

/// <summary>
/// The pageserver as a real process between three real safekeepers, real compute agents with
/// PostgreSQL 15, and a local-folder object store.
/// </summary>
public sealed class PageserverClusterTests
{
    /// <summary>For waits on images and retention: generous, as the whole suite shares two cores.</summary>
    private static readonly TimeSpan Slow = TimeSpan.FromSeconds(180);

    private static Task<T> EventuallyAsync<T>(Func<Task<T>> probe, Func<T, bool> done, TimeSpan timeout, Func<string> describe) =>
        Eventually.ReachAsync(probe, done, timeout, describe);

    /// <summary>The safekeepers' commit LSN (the highest any reports).</summary>
    private static async Task<Lsn> CommitLsnAsync(ComputeCluster cluster) =>
        new((await Task.WhenAll(Enumerable.Range(0, 3).Select(async i =>
        {
            try { return (await cluster.Safekeepers.StatusAsync(i)).CommitLsn; } catch (RpcException) { return 0UL; }
        }))).Max());

    private static Task<TimelineInfo> WaitIngestedAsync(ComputeCluster cluster, Lsn lsn) =>
        cluster.Pageserver.WaitForIngestAsync(cluster.TenantId, cluster.TimelineId, lsn, Slow);

    [Fact]
    public async Task Images_come_from_the_replay_instance_and_a_fresh_vm_starts_from_the_newest_one()
    {
        await using var cluster = await ComputeCluster.StartAsync(vms: 2, pageserverArguments: PageserverNode.FrequentImages);
        await cluster.AttachOrThrowAsync(cluster.Vms[0]);
        var cs = Sql.ConnectionString(cluster, cluster.Vms[0]);
        await Sql.ExecAsync(cs, "create table t (id int primary key, pad text)");
        await Sql.ExecAsync(cs, "insert into t select g, repeat('x', 200) from generate_series(1, 20000) g");
        await Sql.ExecAsync(cs, "checkpoint"); // a restartpoint on the replay instance makes a newer image possible

        var info = await EventuallyAsync(() => cluster.Pageserver.TimelineAsync(cluster.TenantId, cluster.TimelineId),
            i => i.ImageCount >= 2, Slow, cluster.Logs);
        Assert.True(info.LatestImageLsn > cluster.Timeline.StartLsn);
        using (var http = new HttpClient())
            Assert.Contains("pageserver_images_taken_total", await http.GetStringAsync(new Uri(cluster.Pageserver.HttpUri, "/metrics")));

        await Sql.ExecAsync(cs, "insert into t values (20001, 'after the image')");
        await cluster.Vms[0].DetachAsync();
        await cluster.AttachOrThrowAsync(cluster.Vms[1]);
        var cs2 = Sql.ConnectionString(cluster, cluster.Vms[1]);
        Assert.Equal(20001, await Sql.ScalarAsync(cs2, "select count(*) from t"));
        Assert.Equal("after the image", await Sql.TextAsync(cs2, "select pad from t where id = 20001"));
        // Served from that image or a newer one (a checkpoint at detach may have made another meanwhile).
        // (The line is written by the logger's own thread, maybe after the client has its backup.)
        await Eventually.ReachAsync(
            () => Task.FromResult(System.Text.RegularExpressions.Regex.Matches(File.ReadAllText(cluster.Pageserver.LogFile), @"served from image ([0-9A-F]+/[0-9A-F]+)")
                .Select(m => Lsn.Parse(m.Groups[1].Value)).ToList()),
            servedFrom => servedFrom.Any(lsn => lsn >= new Lsn(info.LatestImageLsn)), TimeSpan.FromSeconds(60), cluster.Logs);
    }

    [Theory]
    [InlineData("local folder")]
    [InlineData("s3")]
    public async Task A_pageserver_killed_and_its_disk_deleted_reattaches_from_object_storage_losing_nothing(string backend)
    {
        await using var s3 = backend == "s3" ? await S3rverServer.StartAsync() : null;
        string[] storage = s3 is null ? [] : ["--s3-endpoint", s3.ServiceUrl, "--s3-bucket", "ps" + Guid.NewGuid().ToString("N")[..12]];
        await using var cluster = await ComputeCluster.StartAsync(vms: 2, pageserverArguments: storage);
        await cluster.AttachOrThrowAsync(cluster.Vms[0]);
        var cs = Sql.ConnectionString(cluster, cluster.Vms[0]);
        // Writes go on while the pageserver dies: computes never wait for it.
        var writer = await AckedBatchWriter.StartAsync(cs, batchSize: 2000);
        await EventuallyAsync(() => cluster.Pageserver.TimelineAsync(cluster.TenantId, cluster.TimelineId),
            i => i.RemoteConsistentLsn > cluster.Timeline.StartLsn + 2 * (ulong)WalGeometry.DefaultSegmentSize, Slow, cluster.Logs);
        var before = await cluster.Pageserver.TimelineAsync(cluster.TenantId, cluster.TimelineId);

        await cluster.Pageserver.KillAsync();
        cluster.Pageserver.WipeDisk();
        await Task.Delay(500);
        await cluster.Pageserver.StartAsync();
        var acked = await writer.StopAsync();

        var after = await WaitIngestedAsync(cluster, await CommitLsnAsync(cluster));
        Assert.True(after.Generation > before.Generation, $"generation {after.Generation} after {before.Generation}");
        Assert.True(after.RemoteConsistentLsn >= before.RemoteConsistentLsn);
        await cluster.Vms[0].DetachAsync();
        await cluster.AttachOrThrowAsync(cluster.Vms[1]);
        Assert.Equal(acked, await Sql.ScalarAsync(Sql.ConnectionString(cluster, cluster.Vms[1]), "select count(*) from acked"));
    }

    /// <summary>
    /// A creation acknowledged is one a secondary can attach from object storage even if the
    /// pageserver dies at once (the storage controller fails it over then); one that cannot reach
    /// object storage is refused and leaves nothing behind, so the same id can be created later.
    /// </summary>
    [Fact]
    public async Task A_timeline_is_in_object_storage_before_its_creation_is_acknowledged_and_is_not_created_when_it_cannot_be()
    {
        await using var s3 = await S3rverServer.StartAsync();
        await using var cluster = await ComputeCluster.StartAsync(vms: 0,
            pageserverArguments: ["--s3-endpoint", s3.ServiceUrl, "--s3-bucket", "ps" + Guid.NewGuid().ToString("N")[..12]]);
        Assert.True(cluster.Timeline.RemoteConsistentLsn >= cluster.Timeline.StartLsn, $"created with remote consistent {new Lsn(cluster.Timeline.RemoteConsistentLsn)}");
        var branch = await cluster.Pageserver.CreateTimelineAsync(cluster.TenantId, TimelineIds.New(), ancestor: cluster.TimelineId);
        Assert.True(branch.RemoteConsistentLsn >= branch.StartLsn, $"branched with remote consistent {new Lsn(branch.RemoteConsistentLsn)}");

        await s3.KillAsync();
        var id = TimelineIds.New();
        var refused = await Assert.ThrowsAsync<RpcException>(() => cluster.Pageserver.CreateTimelineAsync(cluster.TenantId, id, ancestor: cluster.TimelineId));
        Assert.Equal(StatusCode.Unavailable, refused.StatusCode);
        Assert.Contains("could not be put in object storage", refused.Status.Detail);
        var unknown = await Assert.ThrowsAsync<RpcException>(() => PageserverClient.GetTimelineAsync(cluster.Pageserver.Uri, cluster.TenantId, id));
        Assert.Equal(StatusCode.NotFound, unknown.StatusCode);
        Assert.False(Directory.Exists(Path.Combine(cluster.Pageserver.DataDirectory, "tenants", cluster.TenantId, "timelines", id)));

        await s3.RestartAsync();
        var created = await cluster.Pageserver.CreateTimelineAsync(cluster.TenantId, id, ancestor: cluster.TimelineId);
        Assert.True(created.RemoteConsistentLsn >= created.StartLsn);
    }

    [Fact]
    public async Task Safekeeper_disks_stay_bounded_as_the_pageserver_uploads_and_reports()
    {
        await using var cluster = await ComputeCluster.StartAsync(vms: 1);
        await cluster.AttachOrThrowAsync(cluster.Vms[0]);
        var cs = Sql.ConnectionString(cluster, cluster.Vms[0]);
        await Sql.ExecAsync(cs, "create table big (id int, pad text)");
        for (int round = 0; round < 8; round++)
        {
            // About 12 MB of WAL per round, several segments in all.
            await Sql.ExecAsync(cs, $"insert into big select g, repeat('z', 1000) from generate_series(1, 10000) g");
        }
        var commit = await CommitLsnAsync(cluster);
        Assert.True(WalGeometry.Default.SegmentNumber(commit) - WalGeometry.Default.SegmentNumber(new Lsn(cluster.Timeline.StartLsn)) >= 3,
            $"the run wrote WAL only up to {commit}: too little to show trimming");
        await WaitIngestedAsync(cluster, commit);
        // Once uploaded and reported, each safekeeper keeps only the last segments.
        await EventuallyAsync(() => Task.FromResult(Enumerable.Range(0, 3).Max(SegmentFiles)), n => n <= 2, Slow, cluster.Logs);
        // Every finished segment is in object storage, and the safekeepers were told so.
        var finished = WalGeometry.Default.SegmentStartOf(commit).Value;
        await EventuallyAsync(() => cluster.Safekeepers.StatusAsync(0), st => st.RemoteConsistentLsn >= finished, Slow, cluster.Logs);
        Assert.Equal(80000, await Sql.ScalarAsync(cs, "select count(*) from big"));

        int SegmentFiles(int sk) => Directory.Exists(cluster.Safekeepers.TimelineDir(sk))
            ? Directory.EnumerateFiles(cluster.Safekeepers.TimelineDir(sk))
                .Count(f => WalGeometry.Default.TryParseSegmentFileName(Path.GetFileName(f).Replace(".partial", "", StringComparison.Ordinal), out _, out _))
            : 0;
    }

    /// <summary>
    /// Waits until the pageserver ingests from a source other than <paramref name="oldSource"/>, up to
    /// the commit LSN. Both, not only the LSN: right after a commit the safekeepers may not have been
    /// told the new commit LSN yet (it comes with the next message), and the old one is ingested already.
    /// </summary>
    private static async Task<TimelineInfo> WaitIngestedElsewhereAsync(ComputeCluster cluster, string oldSource)
    {
        var committed = await CommitLsnAsync(cluster);
        return await EventuallyAsync(() => cluster.Pageserver.TimelineAsync(cluster.TenantId, cluster.TimelineId),
            i => i.IngestedLsn >= committed.Value && i.WalSource != oldSource, Slow, cluster.Logs);
    }

    [Fact]
    public async Task Ingest_switches_safekeeper_when_its_source_dies_and_never_passes_the_commit_lsn()
    {
        await using var cluster = await ComputeCluster.StartAsync(vms: 1);
        await cluster.AttachOrThrowAsync(cluster.Vms[0]);
        var cs = Sql.ConnectionString(cluster, cluster.Vms[0]);
        await Sql.ExecAsync(cs, "create table s (id int)");
        await Sql.ExecAsync(cs, "insert into s select generate_series(1, 1000)");
        var info = await WaitIngestedAsync(cluster, await CommitLsnAsync(cluster));
        var source = cluster.Safekeepers.Uris.ToList().FindIndex(u => u.ToString() == info.WalSource);
        Assert.True(source >= 0, $"WAL source '{info.WalSource}' is not a safekeeper");

        cluster.Safekeepers.Kill(source);
        await Sql.ExecAsync(cs, "insert into s select generate_series(1001, 2000)"); // two safekeepers are a quorum
        var after = await WaitIngestedElsewhereAsync(cluster, info.WalSource);
        Assert.True(after.IngestedLsn <= after.SafekeeperCommitLsn, $"ingested {new Lsn(after.IngestedLsn)} beyond commit {new Lsn(after.SafekeeperCommitLsn)}");
    }

    [Fact]
    public async Task Ingest_switches_away_from_a_source_that_stalls_without_dying()
    {
        await using var cluster = await ComputeCluster.StartAsync(vms: 1);
        await cluster.AttachOrThrowAsync(cluster.Vms[0]);
        var cs = Sql.ConnectionString(cluster, cluster.Vms[0]);
        await Sql.ExecAsync(cs, "create table st (id int)");
        var info = await WaitIngestedAsync(cluster, await CommitLsnAsync(cluster));
        var source = cluster.Safekeepers.Uris.ToList().FindIndex(u => u.ToString() == info.WalSource);
        Assert.True(source >= 0, $"WAL source '{info.WalSource}' is not a safekeeper");

        // SIGSTOP: its connections stay open but nothing comes through them any more.
        var pid = cluster.Safekeepers.Pid(source)!.Value;
        Storage.Core.Postgres.OsUser.Signal(pid, Storage.Core.Postgres.OsUser.SigStop);
        try
        {
            await Sql.ExecAsync(cs, "insert into st select generate_series(1, 1000)"); // the other two are a quorum
            await WaitIngestedElsewhereAsync(cluster, info.WalSource);
        }
        finally { Storage.Core.Postgres.OsUser.Signal(pid, Storage.Core.Postgres.OsUser.SigCont); } // so it can be stopped normally
    }

    [Fact]
    public async Task A_branch_at_a_time_between_two_inserts_sees_the_first_and_not_the_second()
    {
        await using var cluster = await ComputeCluster.StartAsync(vms: 2);
        await cluster.AttachOrThrowAsync(cluster.Vms[0]);
        var cs = Sql.ConnectionString(cluster, cluster.Vms[0]);
        await Sql.ExecAsync(cs, "create table events (name text)");
        await Sql.ExecAsync(cs, "insert into events values ('first')");
        await Task.Delay(1000);
        var between = DateTimeOffset.UtcNow;
        await Task.Delay(1000);
        await Sql.ExecAsync(cs, "insert into events values ('second')");
        await WaitIngestedAsync(cluster, await CommitLsnAsync(cluster));

        var point = await PageserverClient.LsnForTimestampAsync(cluster.Pageserver.Uri, cluster.TenantId, cluster.TimelineId, between);
        var branchId = TimelineIds.New();
        var branch = await cluster.Pageserver.CreateTimelineAsync(cluster.TenantId, branchId, ancestor: cluster.TimelineId, ancestorTime: between);
        Assert.Equal(point.Lsn, branch.StartLsn);
        Assert.Equal(cluster.TimelineId, branch.AncestorTimelineId);
        var inside = await Assert.ThrowsAsync<RpcException>(() =>
            cluster.Pageserver.CreateTimelineAsync(cluster.TenantId, TimelineIds.New(), ancestor: cluster.TimelineId, ancestorLsn: new Lsn(point.Lsn + 8)));
        Assert.Equal(StatusCode.InvalidArgument, inside.StatusCode); // inside a record: not a place to branch

        await cluster.AttachOrThrowAsync(cluster.Vms[1], cluster.NewAttachRequest(timelineId: branchId));
        var branchCs = Sql.ConnectionString(cluster, cluster.Vms[1]);
        Assert.Equal("first", await Sql.TextAsync(branchCs, "select string_agg(name, ',') from events"));
        // The branch goes its own way; the parent is untouched by it.
        await Sql.ExecAsync(branchCs, "insert into events values ('branch only')");
        Assert.Equal("first,second", await Sql.TextAsync(cs, "select string_agg(name, ',' order by name) from events"));
        Assert.Equal("branch only,first", await Sql.TextAsync(branchCs, "select string_agg(name, ',' order by name) from events"));
    }

    [Fact]
    public async Task Retention_drops_old_images_and_wal_and_refuses_basebackups_below_its_horizon()
    {
        await using var cluster = await ComputeCluster.StartAsync(vms: 2, pageserverArguments: [.. PageserverNode.FrequentImages, "--retention-seconds", "2"]);
        await cluster.AttachOrThrowAsync(cluster.Vms[0]);
        var cs = Sql.ConnectionString(cluster, cluster.Vms[0]);
        await Sql.ExecAsync(cs, "create table r (id int, pad text)");
        for (int round = 1; round <= 4; round++)
        {
            await Sql.ExecAsync(cs, $"insert into r select g, repeat('r', 1000) from generate_series(1, 8000) g");
            await Sql.ExecAsync(cs, "checkpoint");
            var count = (uint)round + 1;
            await EventuallyAsync(() => cluster.Pageserver.TimelineAsync(cluster.TenantId, cluster.TimelineId),
                i => i.LatestImageLsn > cluster.Timeline.StartLsn && i.IngestedLsn > i.LatestImageLsn, Slow, cluster.Logs);
            await Task.Delay(1500);
        }
        await EventuallyAsync(() => cluster.Pageserver.TimelineAsync(cluster.TenantId, cluster.TimelineId),
            i => i.OldestBasebackupLsn > cluster.Timeline.StartLsn, Slow, cluster.Logs);
        var firstSegment = Path.Combine(cluster.Pageserver.DataDirectory, "tenants", cluster.TenantId, "timelines", cluster.TimelineId, "wal", "000000010000000000000001");
        await EventuallyAsync(() => Task.FromResult(File.Exists(firstSegment)), exists => !exists, Slow, cluster.Logs); // the same retention pass, just after the images

        var error = await Assert.ThrowsAsync<RpcException>(() =>
            PageserverClient.BasebackupAsync(cluster.Pageserver.Uri, cluster.TenantId, cluster.TimelineId, new Lsn(cluster.Timeline.StartLsn), Stream.Null, TimeSpan.FromSeconds(5)));
        Assert.Equal(StatusCode.OutOfRange, error.StatusCode);
        Assert.Contains("retention horizon", error.Status.Detail);

        await cluster.Vms[0].DetachAsync();
        await cluster.AttachOrThrowAsync(cluster.Vms[1]);
        Assert.Equal(32000, await Sql.ScalarAsync(Sql.ConnectionString(cluster, cluster.Vms[1]), "select count(*) from r"));
    }

    [Fact]
    public async Task Bad_requests_get_clear_errors_and_a_damaged_image_is_refused()
    {
        await using var cluster = await ComputeCluster.StartAsync(vms: 0);
        var ps = cluster.Pageserver.Uri;
        var start = new Lsn(cluster.Timeline.StartLsn);

        var unknown = await Assert.ThrowsAsync<RpcException>(() => PageserverClient.GetTimelineAsync(ps, cluster.TenantId, TimelineIds.New()));
        Assert.Equal(StatusCode.NotFound, unknown.StatusCode);
        var malformed = await Assert.ThrowsAsync<RpcException>(() => PageserverClient.GetTimelineAsync(ps, "not-hex", cluster.TimelineId));
        Assert.Equal(StatusCode.InvalidArgument, malformed.StatusCode);
        var again = await Assert.ThrowsAsync<RpcException>(() => cluster.Pageserver.CreateTimelineAsync(cluster.TenantId, cluster.TimelineId));
        Assert.Equal(StatusCode.AlreadyExists, again.StatusCode);

        var future = await Assert.ThrowsAsync<RpcException>(() =>
            PageserverClient.BasebackupAsync(ps, cluster.TenantId, cluster.TimelineId, start + 1_000_000, Stream.Null, TimeSpan.FromMilliseconds(500)));
        Assert.Equal(StatusCode.OutOfRange, future.StatusCode);
        Assert.Contains("commit LSN", future.Status.Detail);
        var early = await Assert.ThrowsAsync<RpcException>(() =>
            PageserverClient.BasebackupAsync(ps, cluster.TenantId, cluster.TimelineId, new Lsn(start.Value - 8), Stream.Null, TimeSpan.FromSeconds(1)));
        Assert.Equal(StatusCode.OutOfRange, early.StatusCode);
        var beforeStart = await Assert.ThrowsAsync<RpcException>(() =>
            cluster.Pageserver.CreateTimelineAsync(cluster.TenantId, TimelineIds.New(), ancestor: cluster.TimelineId, ancestorLsn: new Lsn(start.Value - 16)));
        Assert.Equal(StatusCode.OutOfRange, beforeStart.StatusCode);

        // Built on an image the caller holds (a prepared VM): exactly the pg_wal part of the whole basebackup.
        using var whole = new MemoryStream();
        var image = await PageserverClient.BasebackupAsync(ps, cluster.TenantId, cluster.TimelineId, start, whole, TimeSpan.FromSeconds(5));
        using var walOnly = new MemoryStream();
        Assert.Equal(image, await PageserverClient.BasebackupAsync(ps, cluster.TenantId, cluster.TimelineId, start, walOnly, TimeSpan.FromSeconds(5), baseImage: image));
        // A basebackup returns only once the pageserver finished the call (the stream read to its
        // end), so both are counted already: none was cut short by the client dropping the call.
        Assert.Equal(2, await Scrape.ValueAsync(new Uri(cluster.Pageserver.HttpUri, "/metrics"),
            Scrape.TimelineSeries("pageserver_basebackups_total", cluster.TenantId, cluster.TimelineId)));
        var wholeWal = TarEntries(whole).Where(e => e.StartsWith("pg_wal/", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(wholeWal);
        Assert.Equal(wholeWal, TarEntries(walOnly));
        var otherImage = await Assert.ThrowsAsync<RpcException>(() => PageserverClient.BasebackupAsync(ps, cluster.TenantId, cluster.TimelineId, start,
            Stream.Null, TimeSpan.FromSeconds(5), baseImage: image with { Crc32C = image.Crc32C ^ 1 }));
        Assert.Equal(StatusCode.FailedPrecondition, otherImage.StatusCode);
        Assert.Contains("not kept", otherImage.Status.Detail);

        // A flipped byte in the image: refused with its checksum named, never served.
        var images = Path.Combine(cluster.Pageserver.DataDirectory, "tenants", cluster.TenantId, "timelines", cluster.TimelineId, "images");
        var tar = Directory.EnumerateFiles(images, "image-*.tar").Single();
        // Shared: the pageserver may still hold the image open for its upload, and .NET on Unix
        // would otherwise refuse an exclusive open.
        using (var file = new FileStream(tar, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite))
        {
            file.Position = 4096;
            var b = file.ReadByte();
            file.Position = 4096;
            file.WriteByte((byte)(b ^ 0xFF));
        }
        var damaged = await Assert.ThrowsAsync<RpcException>(() =>
            PageserverClient.BasebackupAsync(ps, cluster.TenantId, cluster.TimelineId, start, Stream.Null, TimeSpan.FromSeconds(5)));
        Assert.Equal(StatusCode.DataLoss, damaged.StatusCode);
        Assert.Contains("CRC", damaged.Status.Detail);
    }

    /// <summary>Each entry of a tar as "name sha256-of-its-bytes".</summary>
    private static List<string> TarEntries(MemoryStream tar)
    {
        tar.Position = 0;
        using var reader = new System.Formats.Tar.TarReader(tar, leaveOpen: true);
        var entries = new List<string>();
        while (reader.GetNextEntry() is { } entry)
        {
            using var data = new MemoryStream();
            entry.DataStream?.CopyTo(data);
            entries.Add($"{entry.Name} {Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(data.ToArray()))}");
        }
        return entries;
    }
}
