using System.Diagnostics;
using System.Text.Json;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using Storage.Core;
using Storage.Core.Api;
using Storage.Core.Observability;
using Storage.Proposer;
using Storage.Proto.Safekeeper;
using Storage.Safekeeper.Bench;

// Safekeeper benchmark: how close does quorum-replicated WAL (proposer -> 3 safekeeper processes,
// commit when 2 have fdatasync'd) come to what the disk alone does with the same writes?
// Options: --iterations N (latency samples, default 2000), --warmup N (200), --megabytes N (WAL for
// the throughput run, 256), --inflight N (pipelined 8 KiB appends, 64), --dir DIR (scratch space,
// default the current directory's filesystem), --out FILE (JSON, bench-results/safekeeper.json).
var config = new ConfigurationBuilder().AddCommandLine(args).Build();
int iterations = int.Parse(config["iterations"] ?? "2000");
int warmup = int.Parse(config["warmup"] ?? "200");
int megabytes = int.Parse(config["megabytes"] ?? "256");
int inflight = int.Parse(config["inflight"] ?? "64");
var scratchParent = Path.GetFullPath(config["dir"] ?? Environment.CurrentDirectory);
var outFile = Path.GetFullPath(config["out"] ?? Path.Combine("bench-results", "safekeeper.json"));
const int Chunk = DiskBaseline.BlockSize; // one 8 KiB WAL page per append

// Other work on the machine skews fdatasync and scheduling latency: record how busy it was.
var loadBefore = MachineLoad.Average();
var scratch = Path.Combine(scratchParent, $".bench-tmp-{Guid.NewGuid():N}"[..20]);
Directory.CreateDirectory(scratch);
Console.WriteLine($"scratch directory: {scratch}");
try
{
    // 1. The disk alone.
    var disk = new DiskBaseline(scratch);
    Console.WriteLine($"baseline: {iterations} x (8 KiB write + fdatasync) ...");
    var rawLatency = disk.SingleWriteLatency(warmup, iterations);
    Console.WriteLine("baseline: 8 KiB write + fdatasync each, throughput ...");
    var raw8K = disk.SyncedWriteThroughput(DiskBaseline.BlockSize, DiskBaseline.FileSize);
    Console.WriteLine("baseline: 1 MiB write + fdatasync each, throughput ...");
    var raw1M = disk.SyncedWriteThroughput(DiskBaseline.StreamBlockSize, 4L * DiskBaseline.FileSize);

    // 2. Three safekeeper processes and an elected proposer.
    var tenantId = TimelineIds.New();
    var timelineId = TimelineIds.New();
    var timelineStart = new Lsn(0x1000000); // 0/1000000, the start of segment 1
    Console.WriteLine("starting 3 safekeepers ...");
    await using var cluster = await SafekeeperCluster.StartAsync(scratch, 3);
    QuorumResults quorum;
    try
    {
        await cluster.CreateTimelineAsync(tenantId, timelineId, timelineStart);
        quorum = await RunQuorumAsync(cluster, tenantId, timelineId);
    }
    catch (Exception)
    {
        // The scratch directory (and the logs in it) is deleted below: show the end of each log now.
        foreach (var log in cluster.LogFiles)
            Console.Error.WriteLine($"--- {log} (last lines)\n{string.Join('\n', File.ReadLines(log).TakeLast(20))}");
        throw;
    }

    // 5. Report.
    var results = new BenchResults(
        DateTimeOffset.UtcNow, Environment.ProcessorCount, loadBefore, MachineLoad.Average(), scratchParent, iterations, warmup, megabytes, inflight,
        rawLatency, raw8K, raw1M, quorum.Latency, quorum.Throughput,
        ThroughputVsRaw8K: quorum.Throughput.MBps / raw8K.MBps,
        ThroughputVsRaw1M: quorum.Throughput.MBps / raw1M.MBps,
        P99VsRawP99: quorum.Latency.P99Us / rawLatency.P99Us,
        ThroughputGoalMet: quorum.Throughput.MBps >= 0.5 * raw8K.MBps,
        LatencyGoalMet: quorum.Latency.P99Us < 1000,
        quorum.LatencyPhaseFlushes, quorum.ThroughputPhaseFlushes, quorum.UnaryRoundTrip);
    PrintTable(results);
    Directory.CreateDirectory(Path.GetDirectoryName(outFile)!);
    await File.WriteAllTextAsync(outFile, JsonSerializer.Serialize(results, new JsonSerializerOptions { WriteIndented = true }));
    Console.WriteLine($"results written to {outFile}");
    return 0;
}
finally
{
    // The safekeepers are stopped by the await using above before we get here.
    try { Directory.Delete(scratch, recursive: true); }
    catch (Exception e) { Console.Error.WriteLine($"could not delete {scratch}: {e.Message}"); }
}

async Task<QuorumResults> RunQuorumAsync(SafekeeperCluster cluster, string tenantId, string timelineId)
{
    using var loggers = Logging.CreateFactory("text", Enum.Parse<LogLevel>(config["proposer-log"] ?? "Warning", ignoreCase: true));
    await using var proposer = new WalProposer(new WalProposerOptions
    {
        TenantId = tenantId,
        TimelineId = timelineId,
        Safekeepers = cluster.Endpoints,
    }, loggers.CreateLogger("Storage.Proposer"));
    proposer.Start();
    var start = await proposer.WaitElectedAsync(new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token);
    Console.WriteLine($"proposer elected at term {proposer.Term}, start LSN {start}");

    long latencyBytes = (long)(warmup + iterations) * Chunk;
    long throughputBytes = (long)megabytes * 1024 * 1024 / Chunk * Chunk;
    Console.WriteLine($"generating {(latencyBytes + throughputBytes) / (1024 * 1024)} MiB of WAL ...");
    var wal = new WalStream(start, latencyBytes + throughputBytes);

    // A commit that never comes is a bug worth reporting, not a reason to hang forever.
    async Task CommitAsync(Lsn end)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try { await proposer.WaitForCommitAsync(end, timeout.Token); }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested)
        {
            Console.Error.WriteLine(await cluster.DescribeAsync(tenantId, timelineId));
            throw new TimeoutException($"commit of {end} did not arrive within 30 s (commit LSN {proposer.CommitLsn}, " +
                $"safekeeper flush LSNs {string.Join(", ", proposer.SafekeeperFlushLsns)})");
        }
    }

    // 3. One 8 KiB append at a time, each waiting for its quorum commit.
    Console.WriteLine($"quorum commit latency: {warmup} + {iterations} x (append 8 KiB, wait for commit) ...");
    var flushesBefore = await cluster.FlushCountersAsync();
    var samples = new List<double>(iterations);
    for (int i = 0; i < warmup + iterations; i++)
    {
        var started = Stopwatch.GetTimestamp();
        var end = proposer.Append(wal.Next(Chunk));
        await CommitAsync(end);
        if (i >= warmup) samples.Add(Stopwatch.GetElapsedTime(started).TotalMicroseconds);
    }
    var latency = LatencyStats.From(samples);
    var latencyFlushes = FlushSummary.Between(flushesBefore, await cluster.FlushCountersAsync());

    // 4. Pipelined: keep up to `inflight` appends of 8 KiB waiting for commit.
    Console.WriteLine($"quorum throughput: {megabytes} MiB in 8 KiB appends, up to {inflight} in flight ...");
    flushesBefore = await cluster.FlushCountersAsync();
    var window = new Queue<Task>();
    var throughputStart = Stopwatch.GetTimestamp();
    Lsn last = proposer.EndLsn;
    for (long sent = 0; sent < throughputBytes; sent += Chunk)
    {
        if (window.Count == inflight) await window.Dequeue();
        last = proposer.Append(wal.Next(Chunk));
        window.Enqueue(CommitAsync(last));
    }
    await Task.WhenAll(window);
    var throughput = new ThroughputStats(throughputBytes, Stopwatch.GetElapsedTime(throughputStart).TotalSeconds);
    var throughputFlushes = FlushSummary.Between(flushesBefore, await cluster.FlushCountersAsync());

    await VerifyAsync(cluster, tenantId, timelineId, start, last, wal);

    // For the breakdown: a bare gRPC round trip to one safekeeper (no disk), the floor under any commit.
    var rpcSamples = new List<double>(iterations);
    var key = SafekeeperClient.Key(tenantId, timelineId);
    for (int i = 0; i < warmup + iterations; i++)
    {
        var started = Stopwatch.GetTimestamp();
        await SafekeeperClient.StatusAsync(cluster.Endpoints[0], key);
        if (i >= warmup) rpcSamples.Add(Stopwatch.GetElapsedTime(started).TotalMicroseconds);
    }
    return new QuorumResults(latency, throughput, latencyFlushes, throughputFlushes, LatencyStats.From(rpcSamples));
}

// Committed must mean durable on a quorum with the bytes we sent: check positions and read some WAL back.
static async Task VerifyAsync(SafekeeperCluster cluster, string tenantId, string timelineId, Lsn start, Lsn end, WalStream wal)
{
    var key = new TimelineKey { TenantId = tenantId, TimelineId = timelineId };
    int upToDate = 0;
    foreach (var endpoint in cluster.Endpoints)
    {
        var status = await SafekeeperClient.StatusAsync(endpoint, key);
        Console.WriteLine($"  {endpoint.Authority}: term {status.Term}, flush {new Lsn(status.FlushLsn)}, commit {new Lsn(status.CommitLsn)}");
        if (status.FlushLsn >= end.Value) upToDate++;
    }
    if (upToDate < 2) throw new InvalidOperationException($"only {upToDate} safekeepers have flushed up to the committed LSN {end}");

    // The first 4 MiB as one safekeeper returns it (committed WAL only) must be what we appended.
    const int Check = 4 * 1024 * 1024;
    var actual = new MemoryStream();
    await SafekeeperClient.ReadWalAsync(cluster.Endpoints[0], key, start, start + (ulong)Check, proposerTerm: 0, actual, TimeSpan.FromSeconds(30));
    if (!actual.ToArray().AsSpan().SequenceEqual(wal.Prefix(Check)))
        throw new InvalidOperationException($"WAL read back from {cluster.Endpoints[0]} differs from what was appended ({actual.Length} bytes read)");
    Console.WriteLine($"  verified: {upToDate}/3 safekeepers flushed to {end}; first 4 MiB of WAL read back intact");
}

// The 1, 5 and 15 minute load averages (Linux).

static void PrintTable(BenchResults r)
{
    static string Pass(bool ok) => ok ? "PASS" : "MISS";
    Console.WriteLine();
    Console.WriteLine($"{r.Cores} cores; load average {r.LoadAverageBefore} before, {r.LoadAverageAfter} after; disk: {r.Directory}");
    Console.WriteLine($"{"measure",-44} {"quorum (3 SK)",14} {"raw disk",14} {"ratio",8}");
    Console.WriteLine(new string('-', 83));
    Console.WriteLine($"{"8 KiB commit latency p50 (us)",-44} {r.QuorumLatency.P50Us,14:F0} {r.RawLatency.P50Us,14:F0} {r.QuorumLatency.P50Us / r.RawLatency.P50Us,8:F2}");
    Console.WriteLine($"{"8 KiB commit latency p99 (us)",-44} {r.QuorumLatency.P99Us,14:F0} {r.RawLatency.P99Us,14:F0} {r.P99VsRawP99,8:F2}");
    Console.WriteLine($"{"8 KiB commit latency mean (us)",-44} {r.QuorumLatency.MeanUs,14:F0} {r.RawLatency.MeanUs,14:F0} {r.QuorumLatency.MeanUs / r.RawLatency.MeanUs,8:F2}");
    Console.WriteLine($"{"8 KiB commit latency max (us)",-44} {r.QuorumLatency.MaxUs,14:F0} {r.RawLatency.MaxUs,14:F0} {"",8}");
    Console.WriteLine($"{"throughput MB/s vs raw 8 KiB write+fdatasync",-44} {r.QuorumThroughput.MBps,14:F1} {r.Raw8KThroughput.MBps,14:F1} {r.ThroughputVsRaw8K,8:F2}");
    Console.WriteLine($"{"throughput MB/s vs raw 1 MiB write+fdatasync",-44} {r.QuorumThroughput.MBps,14:F1} {r.Raw1MThroughput.MBps,14:F1} {r.ThroughputVsRaw1M,8:F2}");
    Console.WriteLine();
    Console.WriteLine("raw 8 KiB row: sequential 8 KiB write + fdatasync each (what a lone committer pays);");
    Console.WriteLine("raw 1 MiB row: sequential 1 MiB write + fdatasync each (the disk's streaming rate).");
    Console.WriteLine($"quorum throughput: 8 KiB appends, up to {r.Inflight} waiting for commit at once.");
    Console.WriteLine("where a commit's time goes:");
    Console.WriteLine($"  gRPC unary round trip to one safekeeper (GetTimelineStatus, no disk): p50 {r.UnaryRoundTrip.P50Us:F0} us, p99 {r.UnaryRoundTrip.P99Us:F0} us");
    Console.WriteLine($"  safekeeper fdatasync (their own timing) in the latency phase: mean {r.LatencyPhaseFlushes.MeanUs:F0} us over {r.LatencyPhaseFlushes.Flushes:F0} rounds");
    Console.WriteLine($"fdatasync rounds (all 3 SKs): latency phase {r.LatencyPhaseFlushes.Flushes:F0}, mean {r.LatencyPhaseFlushes.MeanUs:F0} us; " +
        $"throughput phase {r.ThroughputPhaseFlushes.Flushes:F0}, mean {r.ThroughputPhaseFlushes.MeanUs:F0} us");
    Console.WriteLine();
    Console.WriteLine($"goal: quorum throughput >= 50% of raw 8 KiB write+fdatasync: {r.ThroughputVsRaw8K:P0}  {Pass(r.ThroughputGoalMet)}");
    Console.WriteLine($"goal: p99 of one 8 KiB quorum commit < 1 ms:              {r.QuorumLatency.P99Us / 1000:F3} ms  {Pass(r.LatencyGoalMet)}");
}

internal sealed record FlushSummary(double Flushes, double Seconds)
{
    public double MeanUs => Flushes == 0 ? 0 : Seconds / Flushes * 1e6;
    public static FlushSummary Between((double Flushes, double Seconds) before, (double Flushes, double Seconds) after) =>
        new(after.Flushes - before.Flushes, after.Seconds - before.Seconds);
}

internal sealed record QuorumResults(LatencyStats Latency, ThroughputStats Throughput, FlushSummary LatencyPhaseFlushes, FlushSummary ThroughputPhaseFlushes,
    LatencyStats UnaryRoundTrip);

internal sealed record BenchResults(
    DateTimeOffset When, int Cores, string LoadAverageBefore, string LoadAverageAfter, string Directory, int Iterations, int Warmup, int Megabytes, int Inflight,
    LatencyStats RawLatency, ThroughputStats Raw8KThroughput, ThroughputStats Raw1MThroughput,
    LatencyStats QuorumLatency, ThroughputStats QuorumThroughput,
    double ThroughputVsRaw8K, double ThroughputVsRaw1M, double P99VsRawP99,
    bool ThroughputGoalMet, bool LatencyGoalMet,
    FlushSummary LatencyPhaseFlushes, FlushSummary ThroughputPhaseFlushes, LatencyStats UnaryRoundTrip);
