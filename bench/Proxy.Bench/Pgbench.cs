using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using Storage.Core.Postgres;

namespace Storage.Proxy.Bench;

/// <summary>What one pgbench run reports: TPS, and the mean connection time if it printed one (-C).</summary>
public sealed record PgbenchRun(double Tps, double? ConnectMs)
{
    /// <summary>The proxy process's CPU time (user + system) per transaction, for runs through the proxy.</summary>
    public double? ProxyCpuMicrosPerTransaction { get; init; }
}

/// <summary>Runs PostgreSQL's pgbench against one host and port as the endpoint role (password via PGPASSWORD).</summary>
public sealed partial class Pgbench(int port, string role, string password)
{
    public async Task InitAsync(int scale) =>
        (await ProcessRunner.RunAsync(StartInfo(["-i", "-q", "-s", scale.ToString(CultureInfo.InvariantCulture)]), TimeSpan.FromMinutes(15)))
            .ThrowIfFailed("pgbench -i");

    /// <param name="options">Workload options, e.g. -S (select-only) or -C (a new connection per transaction).</param>
    public async Task<PgbenchRun> RunAsync(int clients, int seconds, IEnumerable<string> options)
    {
        string[] args = [.. options, "-c", Invariant(clients), "-j", Invariant(Math.Min(clients, 2)), "-T", Invariant(seconds)];
        var result = (await ProcessRunner.RunAsync(StartInfo(args), TimeSpan.FromSeconds(seconds + 120)))
            .ThrowIfFailed("pgbench " + string.Join(' ', args));
        var tps = TpsLine().Match(result.StandardOutput);
        if (!tps.Success) throw new InvalidOperationException($"no tps in pgbench's output:\n{result.StandardOutput}");
        var connect = ConnectLine().Match(result.StandardOutput);
        return new PgbenchRun(Parse(tps), connect.Success ? Parse(connect) : null);
    }

    private ProcessStartInfo StartInfo(IEnumerable<string> args)
    {
        var psi = new ProcessStartInfo(PostgresBinaries.Locate().PgBench);
        foreach (var a in args.Concat(["-h", "127.0.0.1", "-p", Invariant(port), "-U", role, "postgres"])) psi.ArgumentList.Add(a);
        psi.Environment["PGPASSWORD"] = password;
        psi.Environment["PGSSLMODE"] = "disable"; // the same wire protocol on both paths
        return psi;
    }

    private static string Invariant(int value) => value.ToString(CultureInfo.InvariantCulture);
    private static double Parse(Match m) => double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);

    [GeneratedRegex(@"^tps = ([0-9.]+)", RegexOptions.Multiline)]
    private static partial Regex TpsLine();

    [GeneratedRegex(@"^average connection time = ([0-9.]+) ms", RegexOptions.Multiline)]
    private static partial Regex ConnectLine();
}
