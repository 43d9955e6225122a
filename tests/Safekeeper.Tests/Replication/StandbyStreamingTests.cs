using System.Globalization;
using Storage.Core;
using Storage.Core.Api;
using Storage.Core.Postgres;
using Storage.Core.Processes;
using Storage.Testing;

namespace Storage.Safekeeper.Tests.Replication;

/// <summary>An unmodified PostgreSQL 15 hot standby fed by the safekeepers over the replication protocol.</summary>
[Collection("processes")]
public class StandbyStreamingTests
{
    private static readonly TimeSpan Bounded = TimeSpan.FromSeconds(90);

    [Fact]
    public async Task A_standby_replays_committed_rows_and_moves_to_another_safekeeper_when_its_own_is_killed()
    {
        await using var cluster = await ComputeCluster.StartAsync(vms: 1, safekeeperOffload: false, safekeeperReplication: true);
        var vm = cluster.Vms[0];
        await cluster.AttachOrThrowAsync(vm);
        var primary = Sql.ConnectionString(cluster, vm);
        await Sql.ExecAsync(primary, "CREATE TABLE t (id int PRIMARY KEY, note text); INSERT INTO t VALUES (1, 'before the standby')");

        // The standby's data directory: a basebackup from the pageserver, as a compute gets its own.
        var safekeepers = cluster.Safekeepers;
        // At a commit LSN of safekeeper 1 that covers the table: it may be the quorum's third member,
        // or not yet told the commit, when the primary's COMMIT returns.
        var written = Lsn.Parse(await Sql.TextAsync(primary, "SELECT pg_current_wal_flush_lsn()::text"));
        var at = await Eventually.ReachAsync(async () => new Lsn((await safekeepers.StatusAsync(0)).CommitLsn), c => c >= written, Bounded, cluster.Logs);
        var dataDir = Path.Combine(cluster.Root, "standby", "pgdata");
        await new PageserverBasebackupSource([cluster.Pageserver.Uri], Bounded).FetchAsync(cluster.TenantId, cluster.TimelineId, at, dataDir,
            new CancellationTokenSource(Bounded).Token);
        await using var standby = await StartStandbyAsync(cluster, dataDir);
        var standbySql = $"Host=127.0.0.1;Port={standby.Port};Username=postgres;Database=postgres;Pooling=false;Timeout=15";
        string Describe() => cluster.Logs() + "\n--- standby\n" + standby.ReadLogTail();

        // A row committed on the primary after the basebackup reaches the standby through a safekeeper.
        await Sql.ExecAsync(primary, "INSERT INTO t VALUES (2, 'streamed')");
        await Eventually.ReachAsync(() => Sql.ScalarAsync(standbySql, "SELECT count(*) FROM t"), n => n == 2, Bounded, Describe);
        var senderPort = await Eventually.ReachAsync(() => SenderPortAsync(standbySql), p => p != 0, Bounded, Describe);
        int first = Enumerable.Range(0, 3).Single(i => safekeepers.PgPort(i) == senderPort);
        var flushed = ReplicationClients.StandbySeries(safekeepers, "safekeeper_replication_standby_flush_lsn", "standby1");
        await Eventually.ReachAsync(() => ReplicationClients.MetricAsync(safekeepers, first, flushed), v => v > at.Value, Bounded, Describe);

        // SIGKILL that safekeeper: the primary commits on the other two, the standby follows from one of them.
        safekeepers.Kill(first);
        await Sql.ExecAsync(primary, "INSERT INTO t VALUES (3, 'after the kill')");
        await Eventually.ReachAsync(() => Sql.ScalarAsync(standbySql, "SELECT count(*) FROM t"), n => n == 3, Bounded, Describe);
        var now = await Eventually.ReachAsync(() => SenderPortAsync(standbySql), p => p != 0, Bounded, Describe);
        Assert.NotEqual(safekeepers.PgPort(first), now);
        Assert.Equal("after the kill", await Sql.TextAsync(standbySql, "SELECT note FROM t WHERE id = 3"));
    }

    private static async Task<long> SenderPortAsync(string standby) =>
        await Sql.ScalarAsync(standby, "SELECT coalesce((SELECT sender_port FROM pg_stat_wal_receiver WHERE status = 'streaming'), 0)");

    /// <summary>
    /// PostgreSQL 15 in standby mode on <paramref name="dataDir"/>: primary_conninfo lists every
    /// safekeeper (libpq multi-host) with a compute token of the tenant as the password.
    /// </summary>
    private static async Task<PostgresServer> StartStandbyAsync(ComputeCluster cluster, string dataDir)
    {
        var safekeepers = cluster.Safekeepers;
        var sockets = Path.Combine(cluster.Root, "standby", "sockets");
        Directory.CreateDirectory(sockets);
        int port = ServiceProcess.FreePort();
        var conninfo = string.Join(' ',
            "host=" + string.Join(',', Enumerable.Repeat("127.0.0.1", 3)),
            "port=" + string.Join(',', Enumerable.Range(0, 3).Select(i => safekeepers.PgPort(i).ToString(CultureInfo.InvariantCulture))),
            "user=standby", $"password={safekeepers.ComputeToken()}", "application_name=standby1",
            $"options='{safekeepers.ReplicationOptions}'", "connect_timeout=2");
        await PostgresSettings.AppendAsync(dataDir, new Dictionary<string, string>
        {
            ["port"] = port.ToString(CultureInfo.InvariantCulture),
            ["listen_addresses"] = "127.0.0.1",
            ["unix_socket_directories"] = sockets,
            ["hot_standby"] = "on",
            ["primary_conninfo"] = conninfo,
            ["wal_retrieve_retry_interval"] = "200ms",
            ["wal_receiver_status_interval"] = "1s",
            ["synchronous_standby_names"] = "",
            ["shared_buffers"] = "32MB",
            ["fsync"] = "off",
            ["logging_collector"] = "off",
        });
        await PostgresSettings.WriteHbaAsync(dataDir, ["local all all trust", "host all all 127.0.0.1/32 trust"]);
        await File.WriteAllTextAsync(Path.Combine(dataDir, "standby.signal"), "");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(dataDir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        await OsUser.GiveToPostgresAsync(Path.Combine(cluster.Root, "standby"));
        return await PostgresServer.StartAsync(PostgresBinaries.Locate(), dataDir, Path.Combine(cluster.Root, "standby", "postgres.log"), sockets, port, Bounded);
    }
}
