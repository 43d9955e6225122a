using Storage.Core;
using Storage.Core.Observability;
using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using Microsoft.Extensions.Configuration;
using Storage.ComputeProxy.ControlPlane;
using Storage.Proxy.Bench;
using Storage.Testing;

// Compute proxy benchmark (issue 5), on one cluster (3 safekeepers + pageserver + the proxy process with a pool of
// two VMs and the endpoint main), every figure beside a baseline measured in the same run:
//  1. pgbench select-only (-S) and TPC-B-like, 8 clients, through the proxy vs directly to the compute's PostgreSQL;
//  2. connection set-up: pgbench -C -S (a new connection per transaction), proxy vs direct;
//  3. failover: the VM serving main SIGKILLed while a client commits through the proxy, until its next commit.
// Options: --duration 15 (s per pgbench run) --runs 3 (median of, direct and proxy alternating) --clients 8 --scale 10
// --failovers 5 --out FILE (default bench/results/proxy-<date>.md) --keep-logs DIR (copies every process's log there).
// --classic N (default: --failovers) classic primary/standby failovers;
// --runs 0 skips the pgbench runs, --failovers 0 the failovers; --workloads select,tpcb,connect picks pgbench workloads.
// Select-only also runs through pgbouncer (session pool) when it is installed: the classic bar, in the same run.
var config = new ConfigurationBuilder().AddCommandLine(args).Build();
int Option(string name, int fallback) => int.Parse(config[name] ?? fallback.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
int duration = Option("duration", 15), runs = Option("runs", 3), clients = Option("clients", 8), scale = Option("scale", 10), failovers = Option("failovers", 5);
int classicFailovers = Option("classic", failovers);
var heartbeat = TimeSpan.FromMilliseconds(300); // the proxy's --heartbeat-ms in ProxyProcess, and the classic failover manager's probe interval
var keepLogs = config["keep-logs"]; // a directory: every process's log is copied there at the end (for phase analysis)
var outFile = Path.GetFullPath(config["out"] ?? Path.Combine("bench", "results", $"proxy-{DateTime.UtcNow:yyyy-MM-dd}.md"));
(string Key, string Name, string[] Options)[] allWorkloads = [("select", "select-only (-S)", ["-S"]), ("tpcb", "TPC-B-like (default script)", []), ("connect", "new connection per transaction (-C -S)", ["-C", "-S"])];
var only = (config["workloads"] ?? "select,tpcb,connect").Split(',');
var workloads = allWorkloads.Where(w => only.Contains(w.Key)).Select(w => (w.Name, w.Options)).ToArray();

var loadBefore = MachineLoad.Average();
var started = DateTime.UtcNow;
var results = new Dictionary<(string Workload, string Path), List<PgbenchRun>>();
var failoverSeconds = new List<double>();
var classic = new List<ClassicFailover.Result>();
await using (var cluster = await ComputeCluster.StartAsync(vms: 0))
{
    var root = Directory.CreateTempSubdirectory("proxy-bench-").FullName;
    var proxy = new ProxyProcess(Path.Combine(root, "controlplane"), cluster);
    try
    {
        await proxy.StartAsync();
        await CreateMainAsync(proxy, cluster);
        await Sql.ExecAsync(proxy.ConnectionString(), "select 1"); // wakes main on a pooled VM
        var main = (await Failover.StatusAsync(proxy)).Endpoints.Single(e => e.Id == "main");
        int computePort = main.Port ?? throw new InvalidOperationException("main has no port");
        var paths = new Dictionary<string, Pgbench>
        {
            ["direct"] = new(computePort, ComputeCluster.Role, cluster.Password),
            ["proxy"] = new(proxy.PgPort, ComputeCluster.Role, cluster.Password),
        };
        Log($"pgbench -i -s {scale} through the proxy ...");
        await paths["proxy"].InitAsync(scale);
        await using var pgbouncer = runs > 0 && workloads.Any(w => w.Name == allWorkloads[0].Name) && PgbouncerProcess.Executable is { } bouncer
            ? await PgbouncerProcess.StartAsync(bouncer, computePort, ComputeCluster.Role, cluster.Password)
            : null;
        if (pgbouncer is not null) paths["pgbouncer"] = new(pgbouncer.Port, ComputeCluster.Role, cluster.Password);
        var middlePid = new Dictionary<string, int> { ["proxy"] = proxy.Pid };
        if (pgbouncer is not null) middlePid["pgbouncer"] = pgbouncer.Pid;
        for (int run = 1; run <= runs; run++)
            foreach (var (name, options) in workloads)
            {
                string[] order = run % 2 == 1 ? ["direct", "proxy", "pgbouncer"] : ["pgbouncer", "proxy", "direct"];
                foreach (var path in order.Where(p => paths.ContainsKey(p) && (p != "pgbouncer" || name == allWorkloads[0].Name)))
                {
                    var cpuBefore = middlePid.TryGetValue(path, out var pid) ? CpuTime(pid) : TimeSpan.Zero;
                    var result = await paths[path].RunAsync(clients, duration, options);
                    if (middlePid.ContainsKey(path)) result = result with { ProxyCpuMicrosPerTransaction = (CpuTime(pid) - cpuBefore).TotalMicroseconds / (result.Tps * duration) };
                    Log($"run {run}/{runs} {name} {path}: {result.Tps:F0} tps" + (result.ConnectMs is { } ms ? $", connect {ms:F2} ms" : "")
                        + (result.ProxyCpuMicrosPerTransaction is { } cpu ? $", proxy CPU {cpu:F1} us/transaction" : ""));
                    results.TryAdd((name, path), []);
                    results[(name, path)].Add(result);
                }
            }

        await Sql.ExecAsync(proxy.ConnectionString(), "create table failover_probe (id bigserial primary key, at timestamptz default now())");
        // As the anchors do before each run: a checkpoint, so the pageserver's next image starts from
        // it; the spare VM is then prepared with that image (the state a cluster settles in).
        await Sql.ExecAsync(proxy.ConnectionString(), "checkpoint");
        var checkpointed = Lsn.Parse(await Sql.TextAsync(proxy.ConnectionString(), "select pg_current_wal_lsn()::text")).Value;
        for (int i = 1; i <= failovers; i++)
        {
            var (seconds, breakdown) = await Failover.MeasureAsync(proxy, cluster.TimelineId, checkpointed, cluster.Pageserver.LogFile, TimeSpan.FromSeconds(60));
            failoverSeconds.Add(seconds);
            Log($"failover {i}/{failovers}: {seconds:F2} s from the kill to a commit through the proxy\n{breakdown}");
        }
    }
    catch (Exception)
    {
        Console.Error.WriteLine($"--- proxy\n{proxy.LogTail()}\n{cluster.Logs()}");
        throw;
    }
    finally
    {
        await proxy.DisposeAsync();
        if (keepLogs is not null) CopyLogs([root, cluster.Root], keepLogs);
        try { Directory.Delete(root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

// Classic primary/standby failover, after the cluster is gone so they do not share the cores.
for (int i = 1; i <= classicFailovers; i++)
{
    classic.Add(await ClassicFailover.MeasureAsync(heartbeat, TimeSpan.FromSeconds(60)));
    var c = classic[^1];
    Log($"classic failover {i}/{classicFailovers}: {c.Seconds:F2} s from the kill to a commit on the promoted standby (detected after {c.DetectedSeconds:F2} s; {c.Acknowledged} commits acknowledged, {c.RowsAfter} rows after)");
    if (c.RowsAfter < c.Acknowledged) throw new InvalidOperationException($"classic failover lost acknowledged commits: {c.Acknowledged} acknowledged, {c.RowsAfter} rows");
}

var report = Report();
Console.WriteLine();
Console.WriteLine(report);
Directory.CreateDirectory(Path.GetDirectoryName(outFile)!);
await File.WriteAllTextAsync(outFile, report);
Console.WriteLine($"results written to {outFile}");
return 0;

static async Task CreateMainAsync(ProxyProcess proxy, ComputeCluster cluster)
{
    using var http = proxy.AdminHttp();
    var created = await http.PostAsJsonAsync(new Uri(proxy.Admin, "/endpoints"), new AdminApi.CreateEndpointBody("main", cluster.TenantId, cluster.TimelineId,
        ComputeCluster.Role, cluster.Password, null, SuspendTimeoutSeconds: 3600)); // direct runs hold no proxy session: main must not suspend
    if (!created.IsSuccessStatusCode) throw new InvalidOperationException($"POST /endpoints: {await created.Content.ReadAsStringAsync()}");
}

string Report()
{
    static string Pass(bool ok) => ok ? "PASS" : "MISS";
    static double Median(IEnumerable<double> values)
    {
        var v = values.Order().ToList();
        return v.Count % 2 == 1 ? v[v.Count / 2] : (v[v.Count / 2 - 1] + v[v.Count / 2]) / 2;
    }
    static string Range(IEnumerable<double> values, string format) =>
        $"{Median(values).ToString(format, CultureInfo.InvariantCulture)} [{values.Min().ToString(format, CultureInfo.InvariantCulture)}-{values.Max().ToString(format, CultureInfo.InvariantCulture)}]";
    double Tps(string workload, string path) => Median(results[(workload, path)].Select(r => r.Tps));

    var r = new StringBuilder();
    r.AppendLine($"# Compute proxy benchmark, {started:yyyy-MM-dd HH:mm} UTC");
    r.AppendLine();
    r.AppendLine($"{Environment.ProcessorCount} cores; load average {loadBefore} before, {MachineLoad.Average()} after. One cluster: 3 safekeepers, a pageserver and " +
        "the proxy process (control plane, pool of 2 VMs, default endpoint main), all real processes. pgbench " +
        $"scale {scale} (`pgbench -i` through the proxy), {clients} clients, -j {Math.Min(clients, 2)}, -T {duration} s, median of {runs} runs [min-max], " +
        "direct and proxy alternating; direct = the compute's PostgreSQL port from the admin API's /status, same role and password over TCP; sslmode=disable on both.");
    r.AppendLine();
    if (runs > 0)
    {
        r.AppendLine("## 1-2. pgbench through the proxy vs directly");
        r.AppendLine();
        r.AppendLine("| workload | direct TPS | proxy TPS | proxy/direct | direct connect ms | proxy connect ms | proxy CPU us/transaction |");
        r.AppendLine("|---|---:|---:|---:|---:|---:|---:|");
        foreach (var (name, _) in workloads)
        {
            string Connect(string path) => results[(name, path)].All(x => x.ConnectMs is not null) ? Range(results[(name, path)].Select(x => x.ConnectMs!.Value), "F2") : "-";
            r.AppendLine($"| {name} | {Range(results[(name, "direct")].Select(x => x.Tps), "F0")} | {Range(results[(name, "proxy")].Select(x => x.Tps), "F0")} | " +
                $"{Tps(name, "proxy") / Tps(name, "direct"):F2} | {Connect("direct")} | {Connect("proxy")} | {Range(results[(name, "proxy")].Select(x => x.ProxyCpuMicrosPerTransaction ?? 0), "F1")} |");
        }
        r.AppendLine();
        var selectRatio = results.ContainsKey((allWorkloads[0].Name, "proxy")) ? Tps(allWorkloads[0].Name, "proxy") / Tps(allWorkloads[0].Name, "direct") : double.NaN;
        r.AppendLine($"Goal: select-only, {clients} clients, proxy/direct >= 0.9: {selectRatio:F2} **{Pass(selectRatio >= 0.9)}**. " +
            "Connect ms: pgbench's `average connection time` (reported with -C).");
        r.AppendLine();
        var select = allWorkloads[0].Name;
        if (results.ContainsKey((select, "pgbouncer")))
        {
            r.AppendLine("Classic bar, same run: pgbouncer (session pool, auth_type any, as the anchors run it) in front of the same compute, select-only, alternating with the two paths above.");
            r.AppendLine();
            r.AppendLine("| path | TPS | /direct | CPU of the middle process us/transaction |");
            r.AppendLine("|---|---:|---:|---:|");
            r.AppendLine($"| pgbouncer | {Range(results[(select, "pgbouncer")].Select(x => x.Tps), "F0")} | {Tps(select, "pgbouncer") / Tps(select, "direct"):F2} | {Range(results[(select, "pgbouncer")].Select(x => x.ProxyCpuMicrosPerTransaction ?? 0), "F1")} |");
            r.AppendLine($"| our proxy | {Range(results[(select, "proxy")].Select(x => x.Tps), "F0")} | {selectRatio:F2} | {Range(results[(select, "proxy")].Select(x => x.ProxyCpuMicrosPerTransaction ?? 0), "F1")} |");
            r.AppendLine();
            r.AppendLine($"Our proxy/pgbouncer TPS: {Tps(select, "proxy") / Tps(select, "pgbouncer"):F2}.");
            r.AppendLine();
        }
        else if (results.ContainsKey((select, "direct"))) { r.AppendLine("pgbouncer is not installed (`apt-get install pgbouncer`): the classic bar was not measured in this run."); r.AppendLine(); }
    }
    if (failoverSeconds.Count == 0) return r.ToString();
    r.AppendLine("## 3. Failover through the proxy");
    r.AppendLine();
    var failover = Median(failoverSeconds);
    r.AppendLine($"| measure | median [min-max] of {failoverSeconds.Count} | goal | result |");
    r.AppendLine("|---|---:|---|---|");
    r.AppendLine($"| VM serving main SIGKILLed (agent + PostgreSQL) until a commit through the proxy succeeds | {Range(failoverSeconds, "F2")} s | < 2 s | **{Pass(failover < 2)}** |");
    r.AppendLine();
    r.AppendLine("A client commits in a loop through the proxy (one connection string, a new connection after each error, retried every 20 ms); " +
        "the time runs from the kill to the first commit on a connection opened after it: the control plane's detection (heartbeat 300 ms), " +
        "the attach of main on the spare pooled VM (election, the WAL since its prepared image or a whole Basebackup, PostgreSQL start), and the proxy's reconnect. " +
        "After the pgbench runs a CHECKPOINT is taken (as the anchors do before each run); before each kill the pool is refilled to a spare idle VM, " +
        "prepared by the control plane with the newest image of main's timeline (one ending after that checkpoint). All runs: " + string.Join(", ", failoverSeconds.Select(s => s.ToString("F2", CultureInfo.InvariantCulture))) + " s.");
    r.AppendLine();
    if (classic.Count > 0)
    {
        var classicMedian = Median(classic.Select(c => c.Seconds));
        r.AppendLine($"| classic: PostgreSQL 15 primary (fsync on) + synchronous streaming standby, primary node SIGKILLed (postmaster + children), standby promoted | {Range(classic.Select(c => c.Seconds), "F2")} s | - | - |");
        r.AppendLine();
        r.AppendLine($"Classic: a failover manager probes the primary's port every {heartbeat.TotalMilliseconds:F0} ms (the control plane's heartbeat interval here) and runs " +
            "`pg_ctl promote -w` on the standby at the first refused connect; the client uses a multi-host connection string with " +
            "`Target Session Attributes=read-write` (no cached host state), otherwise as above. Detection took " +
            $"{Range(classic.Select(c => c.DetectedSeconds), "F2")} s. Acknowledged commits all present on the promoted standby in every run " +
            $"({string.Join(", ", classic.Select(c => $"{c.Acknowledged}/{c.RowsAfter}"))} acknowledged/rows). All runs: " +
            string.Join(", ", classic.Select(c => c.Seconds.ToString("F2", CultureInfo.InvariantCulture))) + $" s. Proxy/classic median: {failover / classicMedian:F1}x.");
    }
    else r.AppendLine("A classic primary/standby failover was not run (--classic 0).");
    return r.ToString();
}

static void CopyLogs(IEnumerable<string> roots, string target)
{
    foreach (var root in roots)
        foreach (var log in Directory.EnumerateFiles(root, "*.log", SearchOption.AllDirectories))
        {
            var copy = Path.Combine(target, Path.GetFileName(root), Path.GetRelativePath(root, log));
            Directory.CreateDirectory(Path.GetDirectoryName(copy)!);
            File.Copy(log, copy, overwrite: true);
        }
}

// utime + stime of a process (clock ticks of 10 ms): the proxy's own CPU, which on two cores is taken from PostgreSQL and pgbench.
static TimeSpan CpuTime(int pid)
{
    var stat = File.ReadAllText($"/proc/{pid}/stat");
    var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
    return TimeSpan.FromMilliseconds((long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) * 10);
}


static void Log(string message) => Console.WriteLine($"{DateTime.Now:HH:mm:ss} {message}");
