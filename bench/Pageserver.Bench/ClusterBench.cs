using System.Diagnostics;
using System.Globalization;
using Npgsql;
using Storage.Core;
using Storage.Core.Api;
using Storage.Core.Postgres;
using Storage.Core.Processes;
using Storage.Pageserver.Images;
using Storage.Pageserver.Timelines;
using Storage.Proto.Compute;
using Storage.Testing;

namespace Storage.Pageserver.Bench;

public sealed record SizeResults(
    int TargetMb, int Scale, long DatabaseBytes, double LoadSeconds, string Image,
    long BasebackupBytes, Throughput Basebackup, long RawBytes, Throughput RawFiles,
    double BaselineSeconds, double BaselineCopySeconds, double AttachSeconds, Lsn AttachLsn, long ReplayBytes);

/// <summary>
/// One real cluster per database size (3 safekeepers, a pageserver, compute agents as processes):
/// pgbench -i through the compute, then Basebackup throughput against reading the pageserver's
/// files, pg_basebackup + start of the same data, and attach on an empty VM.
/// </summary>
public static class ClusterBench
{
    /// <param name="logs">If set, the cluster's logs are copied there (they go with the cluster's temp dir).</param>
    /// <param name="attachSettings">Extra postgresql.conf settings for the measured attach (the baseline copies them).</param>
    public static async Task<SizeResults> RunAsync(int targetMb, IReadOnlyList<string> pageserverArguments, int repeats, string? logs,
        IReadOnlyDictionary<string, string> attachSettings)
    {
        int scale = Math.Max(1, (int)Math.Round(targetMb / 16.0)); // pgbench: ~15-16 MB per scale unit
        await using var cluster = await ComputeCluster.StartAsync(vms: 2, pageserverArguments);
        try
        {
            return await RunAsync(cluster, targetMb, scale, repeats, attachSettings);
        }
        catch (Exception)
        {
            Console.Error.WriteLine(cluster.Logs());
            throw;
        }
        finally
        {
            if (logs is not null) CopyLogs(cluster, Path.Combine(logs, $"{targetMb}mb"));
        }
    }

    private static void CopyLogs(ComputeCluster cluster, string target)
    {
        Directory.CreateDirectory(target);
        foreach (var log in Directory.EnumerateFiles(cluster.Root, "*.log"))
            File.Copy(log, Path.Combine(target, Path.GetFileName(log)), overwrite: true);
        foreach (var vm in cluster.Vms)
        {
            var pg = Path.Combine(vm.WorkDirectory, "postgres.log");
            if (File.Exists(pg)) File.Copy(pg, Path.Combine(target, vm.Name + "-postgres.log"), overwrite: true);
        }
    }

    private static async Task<SizeResults> RunAsync(ComputeCluster cluster, int targetMb, int scale, int repeats, IReadOnlyDictionary<string, string> attachSettings)
    {
        var (vm1, vm2) = (cluster.Vms[0], cluster.Vms[1]);
        Expect(await vm1.AttachAsync(cluster.NewAttachRequest()), "attach of vm1");
        var cs = ConnectionString(cluster, vm1);

        Log($"{targetMb} MB: pgbench -i -s {scale} through the compute ...");
        var load = Stopwatch.StartNew();
        var psi = new ProcessStartInfo(PostgresBinaries.Locate().PgBench);
        foreach (var a in new[] { "-i", "-q", "-I", "dtGvp", "-s", scale.ToString(CultureInfo.InvariantCulture), "-h", "127.0.0.1", "-p", vm1.PostgresPort.ToString(CultureInfo.InvariantCulture), "-U", ComputeCluster.Role, "postgres" })
            psi.ArgumentList.Add(a);
        psi.Environment["PGPASSWORD"] = cluster.Password;
        (await ProcessRunner.RunAsync(psi, TimeSpan.FromMinutes(15))).ThrowIfFailed("pgbench -i");
        var loadSeconds = load.Elapsed.TotalSeconds;
        long databaseBytes = long.Parse(await ScalarAsync(cs, "select pg_database_size('postgres')"), CultureInfo.InvariantCulture);

        // A checkpoint gives the pageserver a redo point to take a fresh image at (--image-after-*).
        var beforeCheckpoint = Lsn.Parse(await ScalarAsync(cs, "select pg_current_wal_lsn()"));
        await ScalarAsync(cs, "checkpoint");
        var end = Lsn.Parse(await ScalarAsync(cs, "select pg_current_wal_flush_lsn()"));
        var info = await cluster.Pageserver.WaitForIngestAsync(cluster.TenantId, cluster.TimelineId, end, TimeSpan.FromMinutes(5));
        Log($"{targetMb} MB: ingested to {new Lsn(info.IngestedLsn)}; waiting for an image after {beforeCheckpoint} ...");
        var clock = Stopwatch.StartNew();
        while (info.LatestImageLsn <= beforeCheckpoint.Value && clock.Elapsed < TimeSpan.FromMinutes(3))
        {
            await Task.Delay(500);
            info = await cluster.Pageserver.TimelineAsync(cluster.TenantId, cluster.TimelineId);
        }
        if (info.LatestImageLsn <= beforeCheckpoint.Value) Log($"warning: no image after {beforeCheckpoint} within 3 min; basebackups replay from {new Lsn(info.LatestImageLsn)}");

        // 2. Basebackup at the ingested LSN into a null stream, against reading the files it is made of.
        var lsn = new Lsn(info.IngestedLsn);
        long basebackupBytes = 0;
        ulong imageLsn = 0;
        var basebackup = await MeasureAsync(repeats, async () =>
        {
            var sink = new CountingNullStream();
            imageLsn = (await PageserverClient.BasebackupAsync(cluster.Pageserver.Uri, cluster.TenantId, cluster.TimelineId, lsn, sink, TimeSpan.FromMinutes(2))).End.Value;
            basebackupBytes = sink.Length;
        });
        var paths = TimelinePaths.For(cluster.Pageserver.DataDirectory, cluster.TenantId, cluster.TimelineId);
        var image = new ImageCatalog(paths.Images).All.Single(i => i.EndLsn == imageLsn);
        var geometry = WalGeometry.Default;
        var files = new List<string> { Path.Combine(paths.Images, image.FileName) };
        for (var s = geometry.SegmentNumber(image.Redo); s <= geometry.SegmentNumber(lsn); s++) files.Add(Path.Combine(paths.Wal, geometry.SegmentFileName(1, s)));
        long rawBytes = files.Sum(f => new FileInfo(f).Length);
        var raw = await MeasureAsync(repeats, () => { ReadAll(files); return Task.CompletedTask; });
        var imageText = $"{image.Kind} image at {image.End} (redo {image.Redo}), {image.TarBytes / 1048576.0:F1} MiB tar + {files.Count - 1} WAL segment(s) up to {lsn}";

        // 3a. Detach vm1, let the pageserver ingest everything, then attach on the empty vm2.
        Expect(await vm1.DetachAsync(), "detach of vm1", ComputeState.Idle);
        var flush = new Lsn((await Task.WhenAll(Enumerable.Range(0, 3).Select(cluster.Safekeepers.StatusAsync))).Min(s => s.FlushLsn));
        try { info = await cluster.Pageserver.WaitForIngestAsync(cluster.TenantId, cluster.TimelineId, flush, TimeSpan.FromSeconds(20)); }
        catch (TimeoutException e) { Log($"note: {e.Message} (the safekeepers' commit LSN moves on at the next election)"); }
        Log($"{targetMb} MB: attach on an empty VM ...");
        var attach = Stopwatch.StartNew();
        var request = cluster.NewAttachRequest();
        foreach (var (name, value) in attachSettings) request.Endpoint.PostgresSettings[name] = value;
        var status = await vm2.AttachAsync(request);
        Expect(status, "attach of vm2");
        await ScalarAsync(ConnectionString(cluster, vm2), "select 1");
        var attachSeconds = attach.Elapsed.TotalSeconds;
        var attachLsn = new Lsn(status.StartLsn);

        // 3b. Baseline: pg_basebackup from the running compute PostgreSQL (same data), then start a copy of it.
        // (After the attach: the backup's end switches to a new WAL segment, which the attach would replay.)
        Log($"{targetMb} MB: pg_basebackup + start baseline ...");
        var (baselineSeconds, copySeconds) = await BaselineAsync(cluster, vm2);

        return new SizeResults(targetMb, scale, databaseBytes, loadSeconds, imageText, basebackupBytes, new Throughput(basebackupBytes, basebackup),
            rawBytes, new Throughput(rawBytes, raw), baselineSeconds, copySeconds, attachSeconds, attachLsn, attachLsn - image.Redo);
    }

    /// <summary>Seconds for pg_basebackup (fast checkpoint, WAL streamed) + start until SELECT 1 over TCP; and for the copy alone.</summary>
    private static async Task<(double Total, double Copy)> BaselineAsync(ComputeCluster cluster, ComputeVm vm)
    {
        var dataDirectory = Path.GetDirectoryName(vm.PgWalDirectory)!;
        var socket = File.ReadLines(Path.Combine(dataDirectory, "postmaster.pid")).ElementAt(4); // its socket directory
        var root = Path.Combine(cluster.Root, "baseline");
        Directory.CreateDirectory(Path.Combine(root, "sock"));
        await OsUser.GiveToPostgresAsync(root);
        var copy = Path.Combine(root, "pgdata");
        var binaries = PostgresBinaries.Locate();
        int newPort = ServiceProcess.FreePort();

        var clock = Stopwatch.StartNew();
        (await ProcessRunner.RunAsync(OsUser.StartInfoAsPostgres(binaries.PgBaseBackup,
            ["-h", socket, "-p", vm.PostgresPort.ToString(CultureInfo.InvariantCulture), "-U", "postgres", "-D", copy, "-c", "fast", "-X", "stream"]),
            TimeSpan.FromMinutes(10))).ThrowIfFailed("pg_basebackup");
        var copySeconds = clock.Elapsed.TotalSeconds;
        // The copy has the compute's settings; only its port and socket directory must differ.
        await PostgresSettings.AppendAsync(copy, new Dictionary<string, string>
        {
            ["port"] = newPort.ToString(CultureInfo.InvariantCulture),
            ["unix_socket_directories"] = Path.Combine(root, "sock"),
        });
        await using var server = await PostgresServer.StartAsync(binaries, copy, Path.Combine(root, "postgres.log"), "127.0.0.1", newPort, TimeSpan.FromMinutes(5));
        await ScalarAsync($"Host=127.0.0.1;Port={newPort};Username={ComputeCluster.Role};Password={cluster.Password};Database=postgres;Pooling=false;Timeout=15", "select 1");
        var total = clock.Elapsed.TotalSeconds;
        await server.StopAsync(ShutdownMode.Immediate, TimeSpan.FromSeconds(30));
        Directory.Delete(root, recursive: true);
        return (total, copySeconds);
    }

    private static string ConnectionString(ComputeCluster cluster, ComputeVm vm) =>
        $"Host=127.0.0.1;Port={vm.PostgresPort};Username={ComputeCluster.Role};Password={cluster.Password};Database=postgres;Pooling=false;Timeout=15;Command Timeout=0";

    private static async Task<string> ScalarAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return Convert.ToString(await command.ExecuteScalarAsync(), CultureInfo.InvariantCulture) ?? "";
    }

    private static void Expect(ComputeStatus status, string what, ComputeState state = ComputeState.Running)
    {
        if (status.State != state) throw new InvalidOperationException($"{what}: the VM is {status.State}, not {state}");
    }

    private static async Task<List<double>> MeasureAsync(int repeats, Func<Task> action)
    {
        await action(); // warm-up: JIT, connections, page cache
        var seconds = new List<double>();
        for (int i = 0; i < repeats; i++)
        {
            var started = Stopwatch.GetTimestamp();
            await action();
            seconds.Add(Stopwatch.GetElapsedTime(started).TotalSeconds);
        }
        return seconds;
    }

    private static void ReadAll(IEnumerable<string> files)
    {
        var buffer = new byte[1 << 20];
        foreach (var file in files)
        {
            using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1, FileOptions.SequentialScan);
            while (stream.Read(buffer) > 0) { }
        }
    }

    private static void Log(string message) => Console.WriteLine($"{DateTime.Now:HH:mm:ss} {message}");

    /// <summary>Counts and drops what is written (Stream.Null cannot tell how much it got).</summary>
    private sealed class CountingNullStream : Stream
    {
        private long _length;
        public override void Write(byte[] buffer, int offset, int count) => _length += count;
        public override void Write(ReadOnlySpan<byte> buffer) => _length += buffer.Length;
        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken ct = default) { _length += buffer.Length; return ValueTask.CompletedTask; }
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => _length;
        public override long Position { get => _length; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
