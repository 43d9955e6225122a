using Storage.Core.Auth;
using Storage.Core.Rpc;
using Storage.Core;
using Storage.Core.Api;
using Storage.Core.Processes;

namespace Storage.Safekeeper.Bench;

/// <summary>Real safekeeper processes, each with its own data directory under one root.</summary>
public sealed class SafekeeperCluster : IAsyncDisposable
{
    private readonly List<ServiceProcess> _processes = new();

    public List<Uri> Endpoints { get; } = new();
    public List<Uri> HttpEndpoints { get; } = new();

    public static async Task<SafekeeperCluster> StartAsync(string root, int count)
    {
        var cluster = new SafekeeperCluster();
        try
        {
            var assembly = SafekeeperCommand.Assembly;
            // Auth is always on: the bench calls as an admin of its own key pair.
            var secrets = ClusterSecrets.CreateOrOpen(Path.Combine(root, "auth"));
            GrpcChannels.DefaultToken = secrets.Token(Scope.Admin, "bench");
            for (int id = 1; id <= count; id++)
            {
                int grpcPort = ServiceProcess.FreePort(), httpPort = ServiceProcess.FreePort();
                var dataDir = Path.Combine(root, $"sk{id}");
                Directory.CreateDirectory(dataDir);
                var process = await ServiceProcess.StartAsync(assembly,
                    SafekeeperCommand.Arguments((ulong)id, grpcPort, httpPort, dataDir, "az-a", logFormat: "text", extra: secrets.VerifierArguments()),
                    Path.Combine(root, $"sk{id}.log"));
                cluster._processes.Add(process);
                cluster.Endpoints.Add(new Uri($"http://127.0.0.1:{grpcPort}"));
                cluster.HttpEndpoints.Add(new Uri($"http://127.0.0.1:{httpPort}"));
            }
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    public async Task CreateTimelineAsync(string tenantId, string timelineId, Lsn start)
    {
        foreach (var endpoint in Endpoints)
            await SafekeeperClient.CreateTimelineAsync(endpoint, SafekeeperClient.Key(tenantId, timelineId), start,
                systemId: 7_000_000_000_000_000_001, // WalBuilder's default system id
                timeout: TimeSpan.FromSeconds(30));
    }

    /// <summary>fdatasync rounds and seconds spent in them, summed over all safekeepers (from /metrics).</summary>
    public async Task<(double Flushes, double Seconds)> FlushCountersAsync()
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        double flushes = 0, seconds = 0;
        foreach (var endpoint in HttpEndpoints)
        {
            var text = await http.GetStringAsync(new Uri(endpoint, "/metrics"));
            flushes += Counter(text, "safekeeper_wal_flushes_total");
            seconds += Counter(text, "safekeeper_wal_flush_seconds_total");
        }
        return (flushes, seconds);
    }

    private static double Counter(string metrics, string name) =>
        metrics.Split('\n').Where(l => l.StartsWith(name + " ", StringComparison.Ordinal))
            .Select(l => double.Parse(l[(name.Length + 1)..], System.Globalization.CultureInfo.InvariantCulture)).Sum();

    /// <summary>Each safekeeper's view of the timeline and its counters, for diagnosing a stall.</summary>
    public async Task<string> DescribeAsync(string tenantId, string timelineId)
    {
        var text = new System.Text.StringBuilder();
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        for (int i = 0; i < Endpoints.Count; i++)
        {
            var status = await SafekeeperClient.StatusAsync(Endpoints[i], SafekeeperClient.Key(tenantId, timelineId));
            var metrics = await http.GetStringAsync(new Uri(HttpEndpoints[i], "/metrics"));
            text.AppendLine($"safekeeper {i + 1}: term {status.Term}, flush {new Lsn(status.FlushLsn)}, commit {new Lsn(status.CommitLsn)}; " +
                string.Join(", ", metrics.Split('\n').Where(l => l.StartsWith("safekeeper_", StringComparison.Ordinal))));
        }
        return text.ToString();
    }

    public IEnumerable<string> LogFiles => _processes.Select(p => p.LogFile);

    /// <summary>SIGTERM each safekeeper by PID (SIGKILL if it lingers).</summary>
    public async ValueTask DisposeAsync()
    {
        foreach (var process in _processes)
        {
            try { await process.StopAsync(TimeSpan.FromSeconds(5)); }
            catch (Exception) { process.Kill(); }
            await process.DisposeAsync();
        }
        _processes.Clear();
    }
}
