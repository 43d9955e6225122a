using Storage.Core.Observability;
using System.Globalization;
using System.Text;
using Microsoft.Extensions.Configuration;
using Storage.Pageserver.Bench;

// Pageserver benchmark; every figure is a ratio against a baseline measured in the same run:
//  1. WAL ingest (decode + index + segment layers) vs reading the same real PostgreSQL WAL from its files;
//  2. Basebackup (gRPC stream into a null sink) vs reading the image and WAL files it is made of;
//  3. compute start (attach on an empty VM until SELECT 1 over TCP) vs pg_basebackup + start of the same data;
//  4. (--only failover) the attached pageserver killed: until basebackups work again from the promoted
//     secondary, vs one pageserver restarted at once.
// Options: --only ingest,cluster[,failover]  --sizes 16,1024 (MB, database sizes for 2 and 3)  --wal-scale 10 --wal-seconds 10
// (the pgbench workload whose WAL is ingested)  --repeats 3  --image-after-mb 64 --image-after-seconds 5 (pageserver)
// --dir DIR (scratch, default: current directory)  --logs DIR (keep the cluster's logs)
// --attach-settings name=value,... (postgresql.conf settings for the measured attach; the baseline inherits them)  --out FILE (default bench/results/pageserver-<date>.md).
var config = new ConfigurationBuilder().AddCommandLine(args).Build();
var only = (config["only"] ?? "ingest,cluster").Split(',', StringSplitOptions.RemoveEmptyEntries);
var sizes = (config["sizes"] ?? "16,1024").Split(',', StringSplitOptions.RemoveEmptyEntries).Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToList();
int walScale = int.Parse(config["wal-scale"] ?? "10", CultureInfo.InvariantCulture);
int walSeconds = int.Parse(config["wal-seconds"] ?? "10", CultureInfo.InvariantCulture);
int repeats = int.Parse(config["repeats"] ?? "3", CultureInfo.InvariantCulture);
string[] pageserverArguments = ["--image-after-mb", config["image-after-mb"] ?? "64", "--image-after-seconds", config["image-after-seconds"] ?? "5"];
var scratchParent = Path.GetFullPath(config["dir"] ?? Environment.CurrentDirectory);
var attachSettings = (config["attach-settings"] ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries)
    .Select(s => s.Split('=', 2)).ToDictionary(kv => kv[0], kv => kv[1]);
var logs = config["logs"] is { } l ? Path.GetFullPath(l) : null;
var outFile = Path.GetFullPath(config["out"] ?? Path.Combine("bench", "results", $"pageserver-{DateTime.UtcNow:yyyy-MM-dd}.md"));

var loadBefore = MachineLoad.Average();
var started = DateTime.UtcNow;
var scratch = Path.Combine(scratchParent, $".bench-tmp-{Guid.NewGuid():N}"[..20]);
Directory.CreateDirectory(scratch);
IngestResults? ingest = null;
FailoverResults? failover = null;
var cluster = new List<SizeResults>();
try
{
    if (only.Contains("ingest"))
    {
        Console.WriteLine($"{DateTime.Now:HH:mm:ss} generating WAL: pgbench -i -s {walScale} + {walSeconds} s of pgbench on a scratch PostgreSQL ...");
        var wal = await RealWal.GenerateAsync(Path.Combine(scratch, "wal"), walScale, walSeconds);
        Console.WriteLine($"{DateTime.Now:HH:mm:ss} {wal.Length / 1048576.0:F0} MiB of WAL [{wal.Start}, {wal.End}); measuring read, decode, ingest x {repeats} ...");
        ingest = IngestBench.Run(wal, scratch, repeats);
    }
    if (only.Contains("cluster"))
        foreach (var size in sizes) cluster.Add(await ClusterBench.RunAsync(size, pageserverArguments, repeats, logs, attachSettings));
    if (only.Contains("failover")) failover = await FailoverBench.RunAsync(repeats);
}
finally
{
    try { Directory.Delete(scratch, recursive: true); }
    catch (Exception e) { Console.Error.WriteLine($"could not delete {scratch}: {e.Message}"); }
}

var report = Report(ingest, cluster, failover);
Console.WriteLine();
Console.WriteLine(report);
Directory.CreateDirectory(Path.GetDirectoryName(outFile)!);
await File.WriteAllTextAsync(outFile, report);
Console.WriteLine($"results written to {outFile}");
return 0;

string Report(IngestResults? ingest, List<SizeResults> cluster, FailoverResults? failover)
{
    static string Pass(bool ok) => ok ? "PASS" : "MISS";
    static string Mb(long bytes) => (bytes / 1048576.0).ToString("F1", CultureInfo.InvariantCulture);
    var r = new StringBuilder();
    r.AppendLine($"# Pageserver benchmark, {started:yyyy-MM-dd HH:mm} UTC");
    r.AppendLine();
    r.AppendLine($"{Environment.ProcessorCount} cores; load average {loadBefore} before, {MachineLoad.Average()} after; scratch disk: {scratchParent}; " +
        $"median of {repeats} runs after a warm-up (range in brackets).");
    if (ingest is { } i)
    {
        r.AppendLine();
        r.AppendLine($"## 1. WAL ingest ({Mb(i.WalBytes)} MiB of real WAL, {i.Records:N0} records: {i.Workload})");
        r.AppendLine();
        r.AppendLine("| measure | MB/s | vs raw read |");
        r.AppendLine("|---|---:|---:|");
        void Row(string name, Throughput t) =>
            r.AppendLine($"| {name} | {t.MBps:F0} [{t.MinMBps:F0}-{t.MaxMBps:F0}] | {t.MBps / i.Raw.MBps:F2} |");
        Row("raw: read the segment files into memory (page cache)", i.Raw);
        Row("decode only: WalDecoder + SegmentIndex.Add", i.Decode);
        Row("write only: WalSegmentStore.Write of the same bytes (no decoding)", i.Write);
        Row("ingest: WalIngestor.Ingest into a WalSegmentStore + index files", i.Ingest);
        r.AppendLine();
        r.AppendLine($"Goal: ingest >= 200 MB/s: {i.Ingest.MBps:F0} MB/s **{Pass(i.Ingest.MBps >= 200)}**. " +
            "Ingest feeds the WAL in 128 KiB chunks (a safekeeper's ReadWal chunk), writes 16 MiB segment layers (fdatasync'd as each is left) " +
            "and saves each finished segment's index (checksummed, fsync'd), as the pageserver does.");
    }
    if (cluster.Count > 0)
    {
        r.AppendLine();
        r.AppendLine($"Cluster: 3 safekeepers + pageserver ({string.Join(' ', pageserverArguments)}) + compute agents, real processes" +
            (attachSettings.Count > 0 ? $"; attach settings {string.Join(", ", attachSettings.Select(kv => kv.Key + " = " + kv.Value))}. " : ". ") +
            "Data: `pgbench -i -I dtGvp -s N` through the compute (role over TCP), then a CHECKPOINT, and the pageserver's image after it is waited for.");
        r.AppendLine();
        r.AppendLine("## 2. Basebackup throughput");
        r.AppendLine();
        r.AppendLine("| database | Basebackup MB/s | raw read of its files MB/s | ratio | Basebackup size | files read | made of |");
        r.AppendLine("|---|---:|---:|---:|---:|---:|---|");
        foreach (var c in cluster)
            r.AppendLine($"| {Mb(c.DatabaseBytes)} MiB (scale {c.Scale}) | {c.Basebackup.MBps:F0} [{c.Basebackup.MinMBps:F0}-{c.Basebackup.MaxMBps:F0}] | " +
                $"{c.RawFiles.MBps:F0} [{c.RawFiles.MinMBps:F0}-{c.RawFiles.MaxMBps:F0}] | {c.Basebackup.MBps / c.RawFiles.MBps:F2} | {Mb(c.BasebackupBytes)} MiB | {Mb(c.RawBytes)} MiB | {c.Image} |");
        r.AppendLine();
        r.AppendLine("Basebackup: `PageserverClient.BasebackupAsync` at the ingested LSN into a null stream (gRPC over loopback, CRC checked). " +
            "Raw: the image tar and the WAL segment files it sends, read sequentially from the pageserver's disk (page cache).");
        r.AppendLine();
        r.AppendLine("## 3. Compute start time");
        r.AppendLine();
        r.AppendLine("| database | attach on an empty VM (s) | pg_basebackup + start (s) | of which pg_basebackup (s) | ratio | WAL replayed by attach | goal | result |");
        r.AppendLine("|---|---:|---:|---:|---:|---:|---|---|");
        foreach (var c in cluster)
        {
            bool small = c.TargetMb <= 64;
            var ratio = c.AttachSeconds / c.BaselineSeconds;
            var goal = small ? "attach < 1 s" : "attach <= 1.5 x baseline";
            var ok = small ? c.AttachSeconds < 1 : ratio <= 1.5;
            r.AppendLine($"| {Mb(c.DatabaseBytes)} MiB (scale {c.Scale}) | {c.AttachSeconds:F2} | {c.BaselineSeconds:F2} | {c.BaselineCopySeconds:F2} | {ratio:F2} | " +
                $"{Mb(c.ReplayBytes)} MiB | {goal} | **{Pass(ok)}** |");
        }
        r.AppendLine();
        r.AppendLine("Attach: vm1 detached, the pageserver has ingested the safekeepers' WAL, then `ComputeVm.AttachAsync` on a VM that never ran " +
            "PostgreSQL (empty disk): election, Basebackup from the pageserver (newest image + WAL since its redo point), PostgreSQL start, until Running " +
            "and `SELECT 1` over TCP succeeds. Baseline: `pg_basebackup -c fast -X stream` from the running compute PostgreSQL (unix socket) into a new " +
            "directory, then PostgreSQL started on it until `SELECT 1` over TCP succeeds, measured after the attach on the same data.");
    }
    if (failover is { } f)
    {
        static string Median(IReadOnlyList<double> xs) { var s = xs.Order().ToList(); return $"{s[s.Count / 2]:F2} [{s[0]:F2}-{s[^1]:F2}]"; }
        static double Mid(IReadOnlyList<double> xs) => xs.Order().ElementAt(xs.Count / 2);
        r.AppendLine();
        r.AppendLine("## 4. Pageserver failover");
        r.AppendLine();
        r.AppendLine($"| measure (s, median [min-max] of {f.SecondarySeconds.Count}) | seconds |");
        r.AppendLine("|---|---:|");
        r.AppendLine($"| SIGKILL of the attached pageserver until the controller has promoted the secondary | {Median(f.PromotedSeconds)} |");
        r.AppendLine($"| SIGKILL until a basebackup at the commit LSN is served by the promoted secondary | {Median(f.SecondarySeconds)} |");
        r.AppendLine($"| baseline: SIGKILL, the same pageserver restarted at once, until it serves that basebackup | {Median(f.RestartSeconds)} |");
        r.AppendLine($"| ratio secondary / restart | {Mid(f.SecondarySeconds) / Mid(f.RestartSeconds):F2} |");
        r.AppendLine();
        r.AppendLine("Each run starts its own cluster (3 safekeepers, compute agent with PostgreSQL, a local-folder object store) and writes ~35 MB through the " +
            "compute until a finished segment is uploaded. With the controller: heartbeats every 200 ms, offline after 1.5 s without an answer, secondary " +
            "refresh every 500 ms. The baseline restarts the process without a supervisor delay, on its intact disk: the best case without a secondary.");
    }
    return r.ToString();
}

