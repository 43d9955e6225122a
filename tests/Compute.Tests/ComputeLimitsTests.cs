using Npgsql;
using Storage.Core;
using Storage.Proto.Compute;
using Storage.Testing;

namespace Storage.Compute.Tests;

/// <summary>A compute under resource pressure: a safekeeper that never acknowledges, a full disk.</summary>
public sealed class ComputeLimitsTests
{
    private const string BigRow = "(select string_agg(md5(random()::text), '') from generate_series(1, 3000))"; // ~96 KB, incompressible

    [Fact]
    public async Task A_safekeeper_that_never_acknowledges_cannot_grow_pg_wal_beyond_the_bound_and_status_says_so()
    {
        await using var cluster = await ComputeCluster.StartAsync(vms: 0);
        var vm = await cluster.StartVmAsync(arguments: ["--max-retained-wal-mb", "32"]);
        await cluster.AttachOrThrowAsync(vm);
        var cs = Sql.ConnectionString(cluster, vm);
        await Sql.ExecAsync(cs, "create table t (id int primary key, pad text)");
        cluster.Safekeepers.Kill(2); // gone for good

        for (int i = 0; i < 10; i++) // ~100 MB of WAL
            await Sql.ExecAsync(cs, $"insert into t select g, {BigRow} from generate_series({i * 100}, {i * 100 + 99}) g");

        var status = await Eventually.ReachAsync(vm.StatusAsync, s => s.RetentionNote.Length > 0, TimeSpan.FromSeconds(120), cluster.Logs);
        Assert.Contains("lags", status.RetentionNote);
        // The slot follows the commit once a second (the note is set before it moves): once the writes
        // stopped, it comes within the bound (plus a segment) of the commit LSN.
        var kept = await Eventually.ReachAsync(async () =>
        {
            var slot = Lsn.Parse(await Sql.TextAsync(cs, "select restart_lsn::text from pg_replication_slots where slot_name = 'safekeepers'"));
            return (await vm.StatusAsync()).CommitLsn - slot.Value;
        }, bytes => bytes <= (32UL << 20) + (16UL << 20), TimeSpan.FromSeconds(120), cluster.Logs);
        Assert.True(kept <= 48UL << 20, $"the slot keeps {kept} bytes below the commit LSN");
    }

    [Fact]
    public async Task A_full_disk_on_the_compute_refuses_writes_clearly_loses_no_acknowledged_row_and_recovers_when_space_returns()
    {
        using var disk = SmallDisk.Mount(megabytes: 320);
        await using var cluster = await ComputeCluster.StartAsync(vms: 0);
        var vm = await cluster.StartVmAsync(workDirectory: Path.Combine(disk.Path, "vm1"));
        await cluster.AttachOrThrowAsync(vm);
        var cs = Sql.ConnectionString(cluster, vm);
        await Sql.ExecAsync(cs, "create table t (id int primary key, pad text)");

        var acknowledged = new List<int>();
        var errors = new List<string>();
        async Task<bool> TryInsertAsync(int id)
        {
            try
            {
                await Sql.ExecAsync(cs, $"insert into t values ({id}, {BigRow})", new CancellationTokenSource(TimeSpan.FromSeconds(60)).Token);
                acknowledged.Add(id);
                return true;
            }
            catch (Exception e) when (e is NpgsqlException or OperationCanceledException or TimeoutException)
            {
                errors.Add(e is PostgresException pg ? $"{pg.SqlState} {pg.MessageText}" : e.Message);
                return false;
            }
        }

        for (int id = 1; id <= 20; id++) Assert.True(await TryInsertAsync(id), string.Join("\n", errors));
        disk.FillUp(leaveBytes: 2 << 20);
        int next = 21;
        for (int failures = 0; failures < 3 && next < 400; next++)
            if (!await TryInsertAsync(next)) failures++;
        Assert.True(errors.Count >= 3, "writes kept succeeding on a full disk");
        // Refused clearly either way, and which comes first is timing: a relation that cannot grow is
        // PostgreSQL's ERROR (53100, disk_full) to the client; a pg_wal write that fails is its PANIC,
        // which drops the connections and which the agent reports as the crash it restarts from.
        // The agent records the crash once the postmaster has exited, after the client saw its error.
        if (!errors.Any(e => e.StartsWith("53100") && e.Contains("No space left on device")))
            await Eventually.ReachAsync(() => vm.StatusAsync(), status => status.LastCrash.Length > 0, TimeSpan.FromSeconds(60),
                () => $"neither a disk_full error nor a reported crash: {string.Join("\n", errors)}\n{cluster.Logs()}");

        disk.Free();
        await Eventually.ReachAsync(() => TryInsertAsync(next++), inserted => inserted, TimeSpan.FromSeconds(120),
            () => $"writes did not resume once space returned: {string.Join("\n", errors.TakeLast(5))}\n{cluster.Logs()}");
        var ids = string.Join(',', acknowledged);
        Assert.Equal(acknowledged.Count, await Sql.ScalarAsync(cs, $"select count(*) from t where id in ({ids})"));
        Assert.Equal(ComputeState.Running, (await vm.StatusAsync()).State);
    }
}
