using Storage.Core.Postgres;
using Storage.Core.Wal;

namespace Storage.Core.Tests.Wal;

/// <summary>
/// Runs a real PostgreSQL 15, makes it write varied WAL, and checks that our decoder agrees with
/// pg_waldump record by record.
/// </summary>
public class RealPostgresWalTests
{
    [Fact]
    public async Task Decoder_agrees_with_pg_waldump_on_real_wal()
    {
        await using var pg = await ScratchPostgres.StartAsync(new ScratchPostgresOptions
        {
            // Keep old segments so the workload's first segment is still there after checkpoints.
            Settings = new Dictionary<string, string> { ["wal_keep_size"] = "'1GB'" },
        });
        Assert.True(Directory.Exists(pg.PgWalDirectory));
        var startLsn = Lsn.Parse((await pg.RunSqlAsync("select pg_current_wal_insert_lsn()")).Trim());

        await pg.RunSqlAsync("create table t (id int primary key, v text)");
        await pg.RunSqlAsync("insert into t select g, repeat(md5(g::text), 16) from generate_series(1, 3000) g");
        await pg.RunSqlAsync("checkpoint");
        await pg.RunSqlAsync("update t set v = v || 'x' where id % 10 = 0"); // first touches after a checkpoint: FPWs
        await pg.RunSqlAsync("delete from t where id % 7 = 0");
        await pg.RunSqlAsync("begin; insert into t values (100000, 'rolled back'); rollback;");
        await pg.RunSqlAsync("insert into t values (100001, 'committed')");
        await pg.RunSqlAsync("vacuum t"); // visibility map (fork vm) and FSM pages
        await pg.RunSqlAsync("select pg_switch_wal()");
        await pg.RunSqlAsync("insert into t select g, 'after switch' from generate_series(200000, 200100) g");
        await pg.RunSqlAsync("checkpoint");
        await pg.StopAsync();
        Assert.False(pg.IsRunning);

        // The shutdown checkpoint is the last record; its segment is the last one to read.
        var control = await ProcessRunner.RunAsync(pg.Binaries.Tool("pg_controldata"), ["-D", pg.DataDirectory], TimeSpan.FromSeconds(30));
        control.ThrowIfFailed("pg_controldata");
        var lastCheckpoint = Lsn.Parse(control.StandardOutput.Split('\n')
            .Single(l => l.StartsWith("Latest checkpoint location:", StringComparison.Ordinal)).Split(':')[1].Trim());

        var geometry = WalGeometry.Default;
        var firstSegment = geometry.SegmentFileName(1, geometry.SegmentNumber(startLsn));
        var lastSegment = geometry.SegmentFileName(1, geometry.SegmentNumber(lastCheckpoint));
        var (lines, stderr) = await PgWalDump.RunAsync(pg.PgWalDirectory, firstSegment, lastSegment);

        var files = Enumerable.Range(0, (int)(geometry.SegmentNumber(lastCheckpoint) - geometry.SegmentNumber(startLsn) + 1))
            .Select(i => Path.Combine(pg.PgWalDirectory, geometry.SegmentFileName(1, geometry.SegmentNumber(startLsn) + (ulong)i)))
            .ToList();
        var ours = WalSegmentFiles.Decode(files).ToList();

        Assert.True(lines.Count > 100, $"pg_waldump printed only {lines.Count} records; stderr: {stderr}");
        Assert.Equal(lines.Count, ours.Count);
        for (int i = 0; i < lines.Count; i++) PgWalDump.AssertSame(lines[i], ours[i]);
        Assert.Equal(lastCheckpoint, ours[^1].Lsn);

        // The workload produced every kind of record the later components depend on.
        var commits = ours.Select(XactRecord.TryFrom).OfType<XactRecord>().ToList();
        Assert.Contains(commits, c => c.IsCommit && (DateTimeOffset.UtcNow - c.Time).Duration() < TimeSpan.FromMinutes(1));
        Assert.Contains(commits, c => c.IsAbort);
        var checkpoints = ours.Select(CheckpointRecord.TryFrom).OfType<CheckpointRecord>().ToList();
        Assert.Contains(checkpoints, c => !c.IsShutdown);
        var shutdown = CheckpointRecord.TryFrom(ours[^1]);
        Assert.NotNull(shutdown);
        Assert.True(shutdown.IsShutdown);
        Assert.Equal(ours[^1].Lsn, shutdown.Redo); // a shutdown checkpoint's redo point is itself
        Assert.Equal(1u, shutdown.TimeLineId);
        var switchRecord = Assert.Single(ours, r => r.IsSwitch);
        Assert.True(geometry.IsSegmentStart(switchRecord.EndLsn));
        Assert.Contains(ours, r => r.BlockReferences.Any(b => b.HasImage && b.Image!.IsApplied));
        Assert.Contains(ours, r => r.SpansPages(geometry));
        Assert.Contains(ours, r => r.BlockReferences.Any(b => b.Fork != ForkNumber.Main));
        Assert.Contains(ours, r => r.RmgrName == "Heap" && r.BlockReferences.Count > 0);

        // WalEnd finds the end of the last segment's WAL: right after the shutdown checkpoint.
        await using var lastFile = File.OpenRead(files[^1]);
        var end = WalEnd.Scan(lastFile, geometry.SegmentStart(geometry.SegmentNumber(lastCheckpoint)));
        Assert.Equal(ours[^1].EndLsn, end.EndLsn);
        Assert.Equal(WalEndReason.ZeroedTail, end.Reason);
    }

    [Fact]
    public async Task Scratch_postgres_runs_sql_and_cleans_up()
    {
        string baseDir;
        int pid;
        await using (var pg = await ScratchPostgres.StartAsync())
        {
            baseDir = pg.BaseDirectory;
            pid = pg.ProcessId!.Value;
            Assert.Equal("2", (await pg.RunSqlAsync("select 1 + 1")).Trim());
            var e = await Assert.ThrowsAsync<InvalidOperationException>(() => pg.RunSqlAsync("select * from no_such_table"));
            Assert.Contains("no_such_table", e.Message);
            Assert.True(File.Exists(pg.LogFile));
        }
        Assert.False(Directory.Exists(baseDir));
        Assert.False(OsUser.Signal(pid, 0)); // the server process is gone
    }
}
