using Grpc.Core;
using Storage.Core;
using Storage.Core.Api;
using Storage.Core.Basebackup;
using Storage.Core.Postgres;
using Storage.Proto.Compute;
using Storage.Testing;

namespace Storage.Compute.Tests;

/// <summary>
/// An idle VM prepared for a timeline (its newest image unpacked ahead of time) attaches with only
/// the WAL since that image, and ends with exactly the data a whole basebackup gives; when its image
/// is gone from the pageserver, the attach falls back to a whole basebackup.
/// </summary>
public sealed class PreparedImageTests
{
    private static readonly TimeSpan Slow = TimeSpan.FromSeconds(120);

    [Fact]
    public async Task A_prepared_vm_attaches_with_only_the_wal_since_its_image_and_every_row()
    {
        await using var cluster = await ComputeCluster.StartAsync(vms: 2, pageserverArguments: PageserverNode.FrequentImages);
        var (first, spare) = (cluster.Vms[0], cluster.Vms[1]);
        await cluster.AttachOrThrowAsync(first);
        var cs = Sql.ConnectionString(cluster, first);
        await Sql.ExecAsync(cs, "create table kept (id int primary key, pad text)");
        await Sql.ExecAsync(cs, "insert into kept select g, repeat('x', 500) from generate_series(1, 5000) g");
        await Sql.ExecAsync(cs, "checkpoint");
        var image = await ImageAfterAsync(cluster, new Lsn(cluster.Timeline.StartLsn));

        // Only an idle VM prepares; the spare holds the newest image, and asking again changes nothing.
        var busy = await Assert.ThrowsAsync<RpcException>(() => first.PrepareAsync(cluster.NewPrepareRequest()));
        Assert.Equal(StatusCode.FailedPrecondition, busy.StatusCode);
        var prepared = await spare.PrepareAsync(cluster.NewPrepareRequest());
        Assert.Equal((cluster.TenantId, cluster.TimelineId), (prepared.TenantId, prepared.TimelineId));
        Assert.True(prepared.ImageLsn >= image.Value, $"prepared {new Lsn(prepared.ImageLsn)}, the image is {image}");
        // The image of the compute's end-of-recovery checkpoint may still be followed by the one of
        // ours: a prepare moves on to a newer image, and once there is none it keeps what it holds.
        for (int round = 1; ; round++)
        {
            var again = await spare.PrepareAsync(cluster.NewPrepareRequest());
            if (again.Equals(prepared)) break;
            Assert.True(again.ImageLsn > prepared.ImageLsn, $"prepared {new Lsn(prepared.ImageLsn)}, then {new Lsn(again.ImageLsn)}");
            Assert.True(round < 10, "the pageserver kept taking new images without new checkpoints");
            prepared = again;
        }
        Assert.Equal(prepared, (await spare.HeartbeatAsync()).Prepared);
        // WAL since an image cannot end before the image does.
        var held = new ImageIdentity(new Lsn(prepared.ImageLsn), prepared.ImageCrc32C);
        var before = await Assert.ThrowsAsync<RpcException>(() => PageserverClient.BasebackupAsync(cluster.Pageserver.Uri, cluster.TenantId, cluster.TimelineId,
            new Lsn(cluster.Timeline.StartLsn), Stream.Null, TimeSpan.FromSeconds(10), baseImage: held));
        Assert.Equal(StatusCode.InvalidArgument, before.StatusCode);

        // Rows after the image come from the WAL; then the attached VM dies with its PostgreSQL.
        await Sql.ExecAsync(cs, "insert into kept select g, 'after' from generate_series(5001, 5100) g");
        var status = await first.StatusAsync();
        first.Process.Kill();
        OsUser.Signal(status.PostgresPid, OsUser.SigKill);

        var attached = await cluster.AttachOrThrowAsync(spare);
        Assert.True(attached.BuiltOnPreparedImage, cluster.Logs());
        Assert.Equal(prepared.ImageLsn, attached.BuiltOnImageLsn);
        Assert.Equal(new PreparedImage(), attached.Prepared); // taken: an attached VM holds none
        var cs2 = Sql.ConnectionString(cluster, spare);
        Assert.Equal(5100, await Sql.ScalarAsync(cs2, "select count(*) from kept"));
        Assert.Equal(100, await Sql.ScalarAsync(cs2, "select count(*) from kept where pad = 'after'"));
        await Sql.ExecAsync(cs2, "insert into kept values (5101, 'new')");
        Assert.Equal(5101, await Sql.ScalarAsync(cs2, "select count(*) from kept"));
    }

    [Fact]
    public async Task A_vm_whose_prepared_image_is_gone_attaches_from_a_whole_basebackup()
    {
        await using var cluster = await ComputeCluster.StartAsync(vms: 2, pageserverArguments: [.. PageserverNode.FrequentImages, "--retention-seconds", "2"]);
        var (first, spare) = (cluster.Vms[0], cluster.Vms[1]);
        await cluster.AttachOrThrowAsync(first);
        var prepared = await spare.PrepareAsync(cluster.NewPrepareRequest()); // initdb's image

        // Newer images, and the retention horizon passes the prepared one: the pageserver drops it.
        var cs = Sql.ConnectionString(cluster, first);
        await Sql.ExecAsync(cs, "create table kept (id int primary key, pad text)");
        await Sql.ExecAsync(cs, "insert into kept select g, repeat('x', 500) from generate_series(1, 5000) g");
        await Sql.ExecAsync(cs, "checkpoint");
        await Eventually.ReachAsync(() => cluster.Pageserver.TimelineAsync(cluster.TenantId, cluster.TimelineId),
            info => info.OldestBasebackupLsn > prepared.ImageLsn, Slow, cluster.Logs);
        var status = await first.StatusAsync();
        first.Process.Kill();
        OsUser.Signal(status.PostgresPid, OsUser.SigKill);

        var attached = await cluster.AttachOrThrowAsync(spare);
        Assert.False(attached.BuiltOnPreparedImage);
        Assert.True(attached.BuiltOnImageLsn > prepared.ImageLsn);
        Assert.Equal(5000, await Sql.ScalarAsync(Sql.ConnectionString(cluster, spare), "select count(*) from kept"));
    }

    [Fact]
    public async Task Bad_prepare_requests_get_clear_errors()
    {
        await using var cluster = await ComputeCluster.StartAsync(vms: 1);
        var vm = cluster.Vms[0];
        var badId = cluster.NewPrepareRequest();
        badId.TimelineId = "nope";
        var e = await Assert.ThrowsAsync<RpcException>(() => vm.PrepareAsync(badId));
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Contains("timeline_id", e.Status.Detail);

        var noPageserver = cluster.NewPrepareRequest();
        noPageserver.Pageservers.Clear();
        e = await Assert.ThrowsAsync<RpcException>(() => vm.PrepareAsync(noPageserver));
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);

        var unknown = cluster.NewPrepareRequest();
        unknown.TimelineId = TimelineIds.New();
        e = await Assert.ThrowsAsync<RpcException>(() => vm.PrepareAsync(unknown));
        Assert.Equal(StatusCode.Unavailable, e.StatusCode);
        Assert.Contains("no pageserver serves", e.Status.Detail);
        Assert.Equal(new PreparedImage(), (await vm.StatusAsync()).Prepared); // nothing half-prepared
    }

    /// <summary>Waits until the pageserver has an image ending after <paramref name="lsn"/>; returns its end.</summary>
    private static async Task<Lsn> ImageAfterAsync(ComputeCluster cluster, Lsn lsn)
    {
        var info = await Eventually.ReachAsync(() => cluster.Pageserver.TimelineAsync(cluster.TenantId, cluster.TimelineId),
            i => i.LatestImageLsn > lsn.Value, Slow, cluster.Logs);
        return new Lsn(info.LatestImageLsn);
    }
}
