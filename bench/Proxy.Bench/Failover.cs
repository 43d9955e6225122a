using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using Npgsql;
using Storage.ComputeProxy.ControlPlane;
using Storage.Core.Postgres;
using Storage.Testing;

namespace Storage.Proxy.Bench;

/// <summary>
/// Failover of an endpoint through the proxy: a client commits in a loop through the proxy while the VM serving
/// main is SIGKILLed (its agent and its PostgreSQL); the time is from the kill to the first commit that succeeds
/// on a connection opened after it (same connection string, retried every 20 ms).
/// </summary>
public static class Failover
{
    /// <param name="preparedAtLeast">Wait until the spare VM holds an image of main's timeline ending at or after this LSN.</param>
    public static async Task<(double Seconds, string Breakdown)> MeasureAsync(ProxyProcess proxy, string timelineId, ulong preparedAtLeast, string pageserverLog, TimeSpan timeout)
    {
        var vm = await ReadyVmAsync(proxy, timelineId, preparedAtLeast);
        await using var probe = new CommitProbe(proxy.ConnectionString(timeoutSeconds: 30), "insert into failover_probe default values");
        await probe.StartAsync();
        var postmaster = proxy.PostmasterPid(vm.Id);
        var killedAt = DateTime.UtcNow;
        probe.MarkKilled();
        OsUser.Signal(vm.Pid, OsUser.SigKill);
        OsUser.Signal(postmaster, OsUser.SigKill);
        var took = await probe.WaitRecoveredAsync(timeout);
        return (took.TotalSeconds, Breakdown(proxy, pageserverLog, killedAt));
    }

    /// <summary>
    /// Waits until main is served and the pool holds a spare idle VM (a refill after a kill) prepared
    /// with an image of main's timeline at or after <paramref name="preparedAtLeast"/>; returns main's VM.
    /// </summary>
    private static async Task<AdminApi.VmView> ReadyVmAsync(ProxyProcess proxy, string timelineId, ulong preparedAtLeast)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            await Sql.ExecAsync(proxy.ConnectionString(), "select 1"); // wakes main if it is not attached
            var status = await StatusAsync(proxy);
            var main = status.Endpoints.Single(e => e.Id == "main");
            var serving = status.Vms.SingleOrDefault(v => v.Id == main.VmId);
            if (serving is not null && status.Vms.Any(v => v.Id != main.VmId && string.Equals(v.State, nameof(VmState.Idle), StringComparison.OrdinalIgnoreCase)
                    && v.PreparedTimelineId == timelineId && v.PreparedImageLsn >= preparedAtLeast)) return serving;
            if (clock.Elapsed > TimeSpan.FromMinutes(2)) throw new TimeoutException("the pool has no spare idle VM prepared for main after 2 min");
            await Task.Delay(250);
        }
    }

    /// <summary>
    /// Where the time went, from the logs: when the control plane declared the VM dead and when the
    /// endpoint was attached again (ms after the kill), with the control plane's and the agent's phases.
    /// </summary>
    private static string Breakdown(ProxyProcess proxy, string pageserverLog, DateTime killedAt)
    {
        IEnumerable<(DateTime At, string Message)> Read(string file) =>
            !File.Exists(file) ? [] : File.ReadLines(file).Select(line =>
            {
                try
                {
                    using var json = JsonDocument.Parse(line);
                    return (json.RootElement.GetProperty("Timestamp").GetDateTime().ToUniversalTime(), json.RootElement.GetProperty("Message").GetString() ?? "");
                }
                catch (Exception e) when (e is JsonException or KeyNotFoundException or FormatException or InvalidOperationException) { return (DateTime.MinValue, ""); }
            }).Where(x => x.Item1 >= killedAt.AddMilliseconds(-5));
        var lines = Read(proxy.Log).Concat(Read(pageserverLog)).Concat(Directory.GetFiles(Path.Combine(proxy.DataDirectory, "vms"), "*.log").SelectMany(Read))
            .Where(x => x.Message.Contains("is dead", StringComparison.Ordinal) || x.Message.Contains(" attached to ", StringComparison.Ordinal)
                || x.Message.Contains(" took: ", StringComparison.Ordinal) || x.Message.Contains("served from image", StringComparison.Ordinal))
            .OrderBy(x => x.At);
        return string.Join("\n", lines.Select(x => $"  +{(x.At - killedAt).TotalMilliseconds,5:F0} ms {x.Message}"));
    }

    public static async Task<AdminApi.StatusView> StatusAsync(ProxyProcess proxy)
    {
        using var http = proxy.AdminHttp();
        return (await http.GetFromJsonAsync<AdminApi.StatusView>(new Uri(proxy.Admin, "/status")))!;
    }
}
