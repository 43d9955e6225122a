using System.Globalization;
using System.Net.Sockets;
using Storage.Core.Postgres;
using Storage.Core.Processes;

namespace Storage.Proxy.Bench;

/// <summary>
/// The classic failover beside the proxy's: a PostgreSQL 15 primary (fsync on) with a synchronous
/// streaming standby (pg_basebackup -R, cluster_name s1 = synchronous_standby_names). A client commits
/// in a loop on a multi-host connection string that only takes the read-write server; the primary
/// node dies (SIGKILL of the postmaster and its children); a failover manager probing the primary's
/// port every heartbeat interval promotes the standby (pg_ctl promote -w) at the first refused probe.
/// The time runs from the kill to the first commit on a connection opened after it.
/// </summary>
public static class ClassicFailover
{
    public sealed record Result(double Seconds, double DetectedSeconds, long Acknowledged, long RowsAfter);

    public static async Task<Result> MeasureAsync(TimeSpan heartbeat, TimeSpan timeout)
    {
        await using var primary = await ScratchPostgres.StartAsync(new ScratchPostgresOptions
        {
            Fsync = true,
            Settings = new Dictionary<string, string> { ["synchronous_commit"] = "on" },
        });
        await primary.RunSqlAsync("create table failover_probe (id bigserial primary key, at timestamptz default now())");
        await using var standby = await StandbyAsync(primary);
        var cs = $"Host=127.0.0.1:{primary.Port},127.0.0.1:{standby.Port};Target Session Attributes=read-write;Host Recheck Seconds=0;" +
                 "Username=postgres;Database=postgres;Pooling=false;Timeout=5;Command Timeout=30";
        long acknowledged;
        TimeSpan took, detected;
        await using (var probe = new CommitProbe(cs, "insert into failover_probe default values"))
        {
            await probe.StartAsync();
            var clock = System.Diagnostics.Stopwatch.StartNew();
            probe.MarkKilled();
            KillNode(primary.ProcessId ?? throw new InvalidOperationException("the primary is not running"));
            await WaitUntilRefusedAsync(primary.Port, heartbeat);
            detected = clock.Elapsed;
            var promote = OsUser.StartInfoAsPostgres(standby.Binaries.PgCtl, ["promote", "-w", "-D", standby.DataDirectory]);
            (await ProcessRunner.RunAsync(promote, TimeSpan.FromSeconds(60))).ThrowIfFailed("pg_ctl promote");
            took = await probe.WaitRecoveredAsync(timeout);
            acknowledged = probe.Acknowledged;
        }
        var rows = long.Parse((await standby.RunSqlAsync("select count(*) from failover_probe")).Trim(), CultureInfo.InvariantCulture);
        return new Result(took.TotalSeconds, detected.TotalSeconds, acknowledged, rows);
    }

    /// <summary>A failover manager's health check: a TCP connect each interval until one is refused.</summary>
    private static async Task WaitUntilRefusedAsync(int port, TimeSpan interval)
    {
        while (true)
        {
            await Task.Delay(interval);
            try
            {
                using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                using var attempt = new CancellationTokenSource(interval);
                await socket.ConnectAsync("127.0.0.1", port, attempt.Token);
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException) { return; }
        }
    }

    /// <summary>Node loss: SIGKILL the postmaster, then every process it started (by PID, from /proc).</summary>
    private static void KillNode(int postmaster)
    {
        var children = Directory.EnumerateDirectories("/proc")
            .Select(d => int.TryParse(Path.GetFileName(d), out var pid) ? pid : 0)
            .Where(pid => pid > 0 && ParentOf(pid) == postmaster).ToList();
        OsUser.Signal(postmaster, OsUser.SigKill);
        foreach (var child in children) OsUser.Signal(child, OsUser.SigKill);
    }

    private static int ParentOf(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1], CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is IOException or FormatException or UnauthorizedAccessException) { return 0; }
    }

    private static async Task<StandbyServer> StandbyAsync(ScratchPostgres primary)
    {
        var root = Directory.CreateTempSubdirectory("classic-standby-").FullName;
        var standby = new StandbyServer(primary.Binaries, root, ServiceProcess.FreePort());
        try
        {
            Directory.CreateDirectory(standby.SocketDirectory);
            await OsUser.GiveToPostgresAsync(root);
            var backup = OsUser.StartInfoAsPostgres(primary.Binaries.PgBaseBackup,
                ["-h", primary.Host, "-p", primary.Port.ToString(CultureInfo.InvariantCulture), "-U", "postgres", "-D", standby.DataDirectory, "-R", "-X", "stream", "-c", "fast"]);
            (await ProcessRunner.RunAsync(backup, TimeSpan.FromMinutes(2))).ThrowIfFailed("pg_basebackup");
            await PostgresSettings.AppendAsync(standby.DataDirectory, new Dictionary<string, string>
            {
                ["port"] = standby.Port.ToString(CultureInfo.InvariantCulture),
                ["unix_socket_directories"] = standby.SocketDirectory,
                ["cluster_name"] = "s1", // the walreceiver's application_name
                ["synchronous_standby_names"] = "", // once promoted it has no standby of its own to wait for
            });
            await standby.StartAsync();
            // Synchronous from here on (not before: the primary's commits would wait for a standby that is not there yet).
            await primary.RunSqlAsync("alter system set synchronous_standby_names = 's1'");
            await primary.RunSqlAsync("select pg_reload_conf()");
            for (int i = 0; (await primary.RunSqlAsync("select count(*) from pg_stat_replication where sync_state = 'sync'")).Trim() != "1"; i++)
            {
                if (i > 300) throw new TimeoutException("the standby did not become synchronous");
                await Task.Delay(100);
            }
            return standby;
        }
        catch
        {
            await standby.DisposeAsync();
            throw;
        }
    }

    /// <summary>The standby's server and directory (removed on dispose).</summary>
    private sealed class StandbyServer(PostgresBinaries binaries, string root, int port) : IAsyncDisposable
    {
        private PostgresServer? _server;
        public PostgresBinaries Binaries => binaries;
        public string DataDirectory => Path.Combine(root, "data");
        public string SocketDirectory => Path.Combine(root, "sock");
        public int Port => port;

        public async Task StartAsync() =>
            _server = await PostgresServer.StartAsync(binaries, DataDirectory, Path.Combine(root, "postgres.log"), "127.0.0.1", port, TimeSpan.FromSeconds(60));

        public Task<string> RunSqlAsync(string sql) => (_server ?? throw new InvalidOperationException("not started")).RunSqlAsync(sql);

        public async ValueTask DisposeAsync()
        {
            if (_server is not null) await _server.DisposeAsync();
            try { Directory.Delete(root, recursive: true); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }
    }
}
