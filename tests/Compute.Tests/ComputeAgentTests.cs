using Grpc.Core;
using System.Diagnostics;
using Npgsql;
using Storage.Core;
using Storage.Core.Api;
using Storage.Core.Basebackup;
using Storage.Core.Postgres;
using Storage.Core.Wal;
using Storage.Proto.Compute;
using Storage.Testing;

namespace Storage.Compute.Tests;

/// <summary>
/// Real PostgreSQL 15 behind real compute agent processes, committing through three real
/// safekeeper processes.
/// </summary>
public sealed class ComputeAgentTests
{
    private static string ConnectionString(ComputeCluster cluster, ComputeVm vm) => Sql.ConnectionString(cluster, vm);
    private static Task<long> ScalarAsync(string connectionString, string sql, CancellationToken ct = default) => Sql.ScalarAsync(connectionString, sql, ct);
    private static Task ExecAsync(string connectionString, string sql, CancellationToken ct = default) => Sql.ExecAsync(connectionString, sql, ct);

    private static async Task<ComputeStatus> AttachAsync(ComputeCluster cluster, ComputeVm vm)
    {
        try
        {
            var status = await vm.AttachAsync(cluster.NewAttachRequest());
            Assert.Equal(ComputeState.Running, status.State);
            return status;
        }
        catch (Exception e) when (e is RpcException)
        {
            throw new Xunit.Sdk.XunitException($"attach failed: {e.Message}\n{cluster.Logs()}");
        }
    }

    [Fact]
    public async Task Wal_on_every_safekeeper_is_byte_identical_to_pg_wal_and_decodes()
    {
        await using var cluster = await ComputeCluster.StartAsync(safekeeperOffload: false); // keep all WAL to compare it

        var vm = cluster.Vms[0];
        // Idle, the VM went through an attach's code once (the JIT's cost is not a failover's).
        var log = await Eventually.ReachAsync(() => Task.FromResult(File.ReadAllText(vm.Process.LogFile)),
            text => text.Contains("warm-up done", StringComparison.Ordinal) || text.Contains("warm-up failed", StringComparison.Ordinal),
            TimeSpan.FromSeconds(60), cluster.Logs);
        Assert.DoesNotContain("warm-up failed", log, StringComparison.Ordinal);
        var attached = await AttachAsync(cluster, vm);
        var cs = ConnectionString(cluster, vm);
        await ExecAsync(cs, "create table t (id int primary key, v text)");
        await ExecAsync(cs, "insert into t select g, repeat(md5(g::text), 20) from generate_series(1, 20000) g"); // > 1 segment of WAL
        for (int i = 0; i < 5; i++) await ExecAsync(cs, $"insert into t values ({100000 + i}, 'tail')");

        var start = new Lsn(attached.StartLsn);
        Assert.Equal(new Lsn(cluster.Timeline.StartLsn), start); // a brand-new timeline starts where initdb's WAL ends
        for (int sk = 0; sk < 3; sk++)
        {
            var status = await cluster.Safekeepers.StatusAsync(sk);
            var end = new Lsn(status.CommitLsn);
            Assert.True(WalGeometry.Default.SegmentNumber(end) > WalGeometry.Default.SegmentNumber(start), $"sk{sk + 1}: WAL [{start}, {end}) does not cross a segment");
            var fromSafekeeper = new MemoryStream();
            await SafekeeperClient.ReadWalAsync(cluster.Safekeepers.Uris[sk], SafekeeperClient.Key(cluster.TenantId, cluster.TimelineId), start, end, 0, fromSafekeeper, TimeSpan.FromSeconds(30));
            var fromPgWal = PgWalFiles.Read(vm.PgWalDirectory, start, end);
            Assert.True(fromPgWal.AsSpan().SequenceEqual(fromSafekeeper.ToArray()), $"sk{sk + 1}: WAL [{start}, {end}) differs from pg_wal");

            // It decodes record by record, and the commit LSN is a record boundary.
            var decoder = new WalDecoder(start);
            decoder.Feed(fromPgWal);
            int records = 0;
            while (decoder.TryDecodeNext(out _)) records++;
            Assert.True(records > 1000, $"only {records} records");
            Assert.Equal(end, decoder.NextLsn);
        }
    }

    [Fact]
    public async Task Pgbench_initializes_and_runs_through_the_safekeepers()
    {
        await using var cluster = await ComputeCluster.StartAsync();
        var vm = cluster.Vms[0];
        await AttachAsync(cluster, vm);
        var binaries = PostgresBinaries.Locate();
        var common = new[] { "-h", "127.0.0.1", "-p", vm.PostgresPort.ToString(), "-U", ComputeCluster.Role };
        var env = new Dictionary<string, string> { ["PGPASSWORD"] = cluster.Password };
        var init = await RunAsync(binaries.PgBench, ["-i", "-s", "1", .. common, "postgres"], env);
        Assert.True(init.Succeeded, init.StandardError + init.StandardOutput + cluster.Logs());
        var run = await RunAsync(binaries.PgBench, ["-c", "4", "-j", "2", "-T", "5", .. common, "postgres"], env);
        Assert.True(run.Succeeded, run.StandardError + run.StandardOutput + cluster.Logs());
        Assert.Contains("number of failed transactions: 0", run.StandardOutput);
        var committed = await ScalarAsync(ConnectionString(cluster, vm), "select count(*) from pgbench_history");
        Assert.True(committed > 0);

        // Observability: the agent's /metrics shows it running and its commit progress.
        using var http = new HttpClient();
        var metrics = await http.GetStringAsync(new Uri(vm.HttpUri, "/metrics"));
        Assert.Contains("compute_state{state=\"Running\"} 1", metrics);
        Assert.Matches(@"compute_quorum_commits_total [1-9]", metrics);

        // The retention slot follows the slowest safekeeper, so pg_wal does not keep WAL they all have.
        var status = await vm.StatusAsync();
        await Eventually.ReachAsync(() => ScalarAsync(ConnectionString(cluster, vm), "select (restart_lsn - '0/0')::bigint from pg_replication_slots where slot_name = 'safekeepers'"),
            slot => slot > (long)status.StartLsn, TimeSpan.FromSeconds(90), () => $"the retention slot stayed at or below {new Lsn(status.StartLsn)}\n{cluster.Logs()}");
    }

    [Fact]
    public async Task Commits_continue_with_one_safekeeper_down_and_wait_without_a_quorum()
    {
        await using var cluster = await ComputeCluster.StartAsync();
        var vm = cluster.Vms[0];
        await AttachAsync(cluster, vm);
        var cs = ConnectionString(cluster, vm);
        await ExecAsync(cs, "create table acked (id int primary key)");
        int next = 0;
        var acknowledged = new List<int>();
        async Task InsertAsync(CancellationToken ct = default) { int id = ++next; await ExecAsync(cs, $"insert into acked values ({id})", ct); acknowledged.Add(id); }

        for (int i = 0; i < 20; i++) await InsertAsync();
        cluster.Safekeepers.Kill(2);
        for (int i = 0; i < 20; i++) await InsertAsync(new CancellationTokenSource(TimeSpan.FromSeconds(90)).Token);

        cluster.Safekeepers.Kill(1);
        var waiting = InsertAsync();
        // Bounded check: without a quorum the COMMIT does not return.
        var finished = await Task.WhenAny(waiting, Task.Delay(TimeSpan.FromSeconds(3)));
        Assert.NotSame(waiting, finished);
        Assert.Equal(ComputeState.Running, (await vm.StatusAsync()).State);

        await cluster.Safekeepers.StartAsync(1);
        await waiting.WaitAsync(TimeSpan.FromSeconds(60)); // returns once a quorum is back
        await cluster.Safekeepers.StartAsync(2);
        for (int i = 0; i < 5; i++) await InsertAsync(new CancellationTokenSource(TimeSpan.FromSeconds(90)).Token);

        var rows = await ScalarAsync(cs, "select count(*) from acked");
        Assert.Equal(acknowledged.Count, rows);
        Assert.Equal(acknowledged.Count, await ScalarAsync(cs, $"select count(*) from acked where id in ({string.Join(',', acknowledged)})"));
    }

    [Fact]
    public async Task Every_synchronous_commit_level_that_promises_a_standby_waits_for_the_quorum()
    {
        await using var cluster = await ComputeCluster.StartAsync();
        var vm = cluster.Vms[0];
        await AttachAsync(cluster, vm);
        var cs = ConnectionString(cluster, vm);
        await ExecAsync(cs, "create table acked (level text primary key)");

        // The walproposer reports one position, the quorum commit LSN, as written, flushed and applied.
        Assert.Equal("true", await Sql.TextAsync(cs,
            "select (write_lsn = flush_lsn and flush_lsn = replay_lsn)::text from pg_stat_replication where application_name = 'walproposer'"));

        cluster.Safekeepers.Kill(1);
        cluster.Safekeepers.Kill(2);
        string[] levels = ["on", "remote_write", "remote_apply"];
        var commits = levels.Select(level => ExecAsync(cs, $"set synchronous_commit = {level}; insert into acked values ('{level}')")).ToList();
        // Bounded check: without a quorum no COMMIT returns, whatever the level.
        await Task.WhenAny(Task.WhenAny(commits), Task.Delay(TimeSpan.FromSeconds(5)));
        foreach (var (level, commit) in levels.Zip(commits))
            Assert.False(commit.IsCompleted, $"a COMMIT at synchronous_commit = {level} returned without a quorum: {commit.Exception?.GetBaseException().Message}");

        await cluster.Safekeepers.StartAsync(1);
        await Task.WhenAll(commits).WaitAsync(TimeSpan.FromSeconds(60)); // a quorum is back
        Assert.Equal(3, await ScalarAsync(cs, "select count(*) from acked"));
        await cluster.Safekeepers.StartAsync(2);
    }

    [Fact]
    public async Task A_second_compute_takes_the_timeline_and_the_first_is_fenced()
    {
        await using var cluster = await ComputeCluster.StartAsync(vms: 2);
        var (first, second) = (cluster.Vms[0], cluster.Vms[1]);
        await AttachAsync(cluster, first);
        var firstCs = ConnectionString(cluster, first);
        await ExecAsync(firstCs, "create table owner (id int primary key, who text)");
        await ExecAsync(firstCs, "insert into owner values (1, 'first')");
        var firstTerm = (await first.StatusAsync()).Term;

        // The second compute wins a higher term and starts from the WAL the first one committed.
        var taken = await AttachAsync(cluster, second);
        Assert.True(taken.Term > firstTerm);
        var secondCs = ConnectionString(cluster, second);
        Assert.Equal(1, await ScalarAsync(secondCs, "select count(*) from owner where who = 'first'"));

        // The first can no longer get a commit acknowledged: its COMMIT fails or never returns.
        var late = ExecAsync(firstCs, "insert into owner values (2, 'first, too late')");
        var outcome = await Task.WhenAny(late, Task.Delay(TimeSpan.FromSeconds(10)));
        if (outcome == late) Assert.True(late.IsFaulted, "a COMMIT of the fenced compute returned success");

        // ...and its agent stops PostgreSQL (the postmaster exits after the state says Fenced) and says why.
        var status = await Eventually.ReachAsync(first.StatusAsync, s => s is { State: ComputeState.Fenced, PostgresPid: 0 }, TimeSpan.FromSeconds(90), cluster.Logs);
        Assert.Equal(ComputeState.Fenced, status.State);
        Assert.Contains("another compute", status.Reason);
        Assert.Equal(0, status.PostgresPid);

        await ExecAsync(secondCs, "insert into owner values (3, 'second')");
        Assert.Equal(0, await ScalarAsync(secondCs, "select count(*) from owner where id = 2"));
    }

    [Fact]
    public async Task Postgres_killed_is_reported_and_restarted_with_every_row()
    {
        await using var cluster = await ComputeCluster.StartAsync();
        var vm = cluster.Vms[0];
        var status = await AttachAsync(cluster, vm);
        var cs = ConnectionString(cluster, vm);
        await ExecAsync(cs, "create table survived (id int primary key)");
        await ExecAsync(cs, "insert into survived select generate_series(1, 500)");
        Assert.NotEqual(0, status.PostgresPid);

        Assert.True(OsUser.Signal(status.PostgresPid, OsUser.SigKill));
        var beat = await Eventually.ReachAsync(vm.HeartbeatAsync, b => b.LastCrash.Contains("SIGKILL"), TimeSpan.FromSeconds(90), cluster.Logs);
        Assert.Contains("SIGKILL", beat.LastCrash);

        // The agent restarts it from a fresh basebackup: every acknowledged row is there, writes go on.
        status = await Eventually.ReachAsync(vm.StatusAsync, s => s.State == ComputeState.Running, TimeSpan.FromSeconds(90), cluster.Logs);
        Assert.True(status.RestartCount >= 1, status.ToString()); // an attempt that failed under load counts too
        Assert.Equal(500, await ScalarAsync(cs, "select count(*) from survived"));
        await ExecAsync(cs, "insert into survived values (501)");
    }

    [Fact]
    public async Task Killed_vm_with_its_disk_deleted_is_replaced_by_another_with_every_row()
    {
        await using var cluster = await ComputeCluster.StartAsync(vms: 2);
        var (first, second) = (cluster.Vms[0], cluster.Vms[1]);
        var status = await AttachAsync(cluster, first);
        var cs = ConnectionString(cluster, first);
        await ExecAsync(cs, "create table acked (id int primary key)");
        for (int i = 1; i <= 50; i++) await ExecAsync(cs, $"insert into acked values ({i})");

        // The VM dies with its PostgreSQL, and its disk is gone.
        first.Process.Kill();
        OsUser.Signal(status.PostgresPid, OsUser.SigKill);
        Eventually.DeleteDirectory(first.WorkDirectory);

        await AttachAsync(cluster, second);
        var cs2 = ConnectionString(cluster, second);
        Assert.Equal(50, await ScalarAsync(cs2, "select count(*) from acked"));
        await ExecAsync(cs2, "insert into acked values (51)");
        Assert.Equal(51, await ScalarAsync(cs2, "select count(*) from acked"));
    }

    [Fact]
    public async Task A_gin_index_build_killed_again_and_again_always_comes_back()
    {
        // A GIN build logs its index as ~256 KiB records of 32 full pages each: a VM killed while
        // they stream must never leave a start LSN inside one (the next attach could not start).
        await using var cluster = await ComputeCluster.StartAsync(vms: 1, safekeeperOffload: false); // keep all WAL to decode it
        var vm = cluster.Vms[0];
        await AttachAsync(cluster, vm);
        await ExecAsync(ConnectionString(cluster, vm), "create table docs (id int primary key, words int[])");
        await ExecAsync(ConnectionString(cluster, vm),
            "insert into docs select g, array(select (g * 7 + k * 13) % 50000 from generate_series(1, 40) k) from generate_series(1, 60000) g");
        var random = new Random(11);
        for (int round = 0; round < 3; round++)
        {
            var cs = ConnectionString(cluster, vm);
            var build = ExecAsync(cs, $"create index docs_words_{round} on docs using gin (words) with (fastupdate = off)");
            await Task.WhenAny(build, Task.Delay(TimeSpan.FromMilliseconds(300 + random.Next(2500))));
            var postmaster = vm.Postmaster;
            vm.Process.Kill();
            await postmaster.KillAllAsync();
            try { await build; } catch (Exception) { } // killed under it, or finished first

            vm = await cluster.StartVmAsync();
            var status = await AttachAsync(cluster, vm);
            // The safekeepers' WAL up to the new start LSN decodes record by record and ends exactly there.
            var (from, start) = (new Lsn(cluster.Timeline.StartLsn), new Lsn(status.StartLsn));
            var wal = new MemoryStream();
            await SafekeeperClient.ReadWalAsync(cluster.Safekeepers.Uris[round % 3], SafekeeperClient.Key(cluster.TenantId, cluster.TimelineId), from, start, 0, wal, TimeSpan.FromSeconds(60));
            WalRecordEnds.Find(from, wal.ToArray()); // throws when the start LSN is inside a record
        }
        var final = ConnectionString(cluster, vm);
        await ExecAsync(final, "create index docs_words_final on docs using gin (words)");
        Assert.Equal(60000, await ScalarAsync(final, "select count(*) from docs"));
        Assert.True(await ScalarAsync(final, "set enable_seqscan = off; select count(*) from docs where words @> array[13]") > 0);
    }

    [Fact]
    public async Task Detached_endpoint_reattaches_on_an_empty_vm_with_every_row()
    {
        await using var cluster = await ComputeCluster.StartAsync(vms: 2);
        var (first, second) = (cluster.Vms[0], cluster.Vms[1]);
        await AttachAsync(cluster, first);
        var cs = ConnectionString(cluster, first);
        await ExecAsync(cs, "create table kept (id int primary key)");
        await ExecAsync(cs, "insert into kept select generate_series(1, 1000)");
        var detached = await first.DetachAsync();
        Assert.Equal(ComputeState.Idle, detached.State);
        Assert.False(Directory.Exists(Path.Combine(first.WorkDirectory, "pgdata")));

        await AttachAsync(cluster, second);
        var cs2 = ConnectionString(cluster, second);
        Assert.Equal(1000, await ScalarAsync(cs2, "select count(*) from kept"));
        await ExecAsync(cs2, "insert into kept values (1001)");
        Assert.Equal(1001, await ScalarAsync(cs2, "select count(*) from kept"));
    }

    [Fact]
    public async Task Bad_attach_requests_get_clear_errors()
    {
        await using var cluster = await ComputeCluster.StartAsync();
        var vm = cluster.Vms[0];

        var badId = cluster.NewAttachRequest();
        badId.TenantId = "not-a-tenant";
        var e = await Assert.ThrowsAsync<RpcException>(() => vm.AttachAsync(badId));
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Contains("tenant_id", e.Status.Detail);

        var badRole = cluster.NewAttachRequest();
        badRole.Endpoint.RoleName = "x; drop table y";
        e = await Assert.ThrowsAsync<RpcException>(() => vm.AttachAsync(badRole));
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);

        var unknown = cluster.NewAttachRequest();
        unknown.TimelineId = TimelineIds.New();
        e = await Assert.ThrowsAsync<RpcException>(() => vm.AttachAsync(unknown));
        // Whichever answers first, the timeline check or the election itself, says the timeline is unknown.
        Assert.True(e.Status.Detail.Contains("not found", StringComparison.OrdinalIgnoreCase) || e.Status.Detail.Contains("not known", StringComparison.Ordinal), e.Status.Detail);
        Assert.Equal(ComputeState.Failed, (await vm.StatusAsync()).State);

        await AttachAsync(cluster, vm); // a failed attach leaves the VM usable
        e = await Assert.ThrowsAsync<RpcException>(() => vm.AttachAsync(cluster.NewAttachRequest()));
        Assert.Equal(StatusCode.FailedPrecondition, e.StatusCode);
    }

    private static Task<ProcessResult> RunAsync(string program, string[] args, Dictionary<string, string> env)
    {
        var psi = new ProcessStartInfo(program);
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var (k, v) in env) psi.Environment[k] = v;
        return ProcessRunner.RunAsync(psi, TimeSpan.FromMinutes(3));
    }
}
