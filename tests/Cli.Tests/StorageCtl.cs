using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Storage.Core.Postgres;
using Storage.Core.Processes;

namespace Storage.Cli.Tests;

/// <summary>The output of one storagectl run.</summary>
public sealed record CtlResult(int ExitCode, string Stdout, string Stderr)
{
    public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Stdout}\n--- stderr\n{Stderr}";
}

/// <summary>
/// Runs the built storagectl as a child process in its own temp working directory, on free ports.
/// Dispose runs `down` and then SIGKILLs any PID still recorded, so no safekeeper outlives a test.
/// </summary>
public sealed class StorageCtl : IAsyncDisposable
{
    public string WorkDir { get; } = Directory.CreateTempSubdirectory("storagectl-").FullName;

    public StorageCtl()
    {
        // Like a project folder: others may traverse it (PostgreSQL runs as postgres when we are root).
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(WorkDir, (UnixFileMode)0b111_101_101);
    }
    public int BasePort { get; } = FindFreePortRange();
    public int HttpBasePort => BasePort + 10;
    public string StateFile => Path.Combine(WorkDir, ".storage", "cluster.json");
    /// <summary>The admin token `up` made (what storagectl itself sends).</summary>
    public string AdminTokenFile => Path.Combine(WorkDir, ".storage", "auth", "admin-storagectl.token");

    public Task<CtlResult> RunAsync(params string[] args) => RunAsync(TimeSpan.FromSeconds(180), args);

    /// <summary>Runs storagectl; a run longer than <paramref name="limit"/> is killed and fails the test.</summary>
    public async Task<CtlResult> RunAsync(TimeSpan limit, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { WorkingDirectory = WorkDir, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "storagectl.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(limit);
        try { await process.WaitForExitAsync(timeout.Token); }
        catch (OperationCanceledException) { process.Kill(); throw new TimeoutException($"storagectl {string.Join(' ', args)} did not finish in {limit.TotalSeconds:0} s"); }
        return new CtlResult(process.ExitCode, await stdout, await stderr);
    }

    /// <summary>The last <paramref name="lines"/> lines of each named component's log (controller, ps1, ...), for a failure message.</summary>
    public string LogTails(int lines, params string[] components) => string.Join('\n', components.Select(name =>
    {
        var file = Path.Combine(WorkDir, ".storage", "logs", name + ".log");
        var tail = File.Exists(file) ? string.Join('\n', File.ReadLines(file).TakeLast(lines)) : "(no log)";
        return $"--- {name}.log\n{tail}";
    }));

    /// <summary>`up` on this instance's ports.</summary>
    public Task<CtlResult> UpAsync() =>
        RunAsync("up", "--base-port", BasePort.ToString(), "--http-base-port", HttpBasePort.ToString());

    /// <summary>The PIDs cluster.json records for safekeepers, pageservers and the proxy (null for stopped ones).</summary>
    public IReadOnlyList<int?> RecordedPids()
    {
        if (!File.Exists(StateFile)) return [];
        using var doc = JsonDocument.Parse(File.ReadAllText(StateFile));
        var root = doc.RootElement;
        return new[] { "safekeepers", "pageservers" }
            .SelectMany(kind => root.TryGetProperty(kind, out var list) ? list.EnumerateArray() : Enumerable.Empty<JsonElement>())
            .Concat(new[] { "proxy", "controller" }.SelectMany(name => root.TryGetProperty(name, out var single) ? [single] : Array.Empty<JsonElement>()))
            .Select(s => s.TryGetProperty("pid", out var pid) && pid.ValueKind == JsonValueKind.Number ? pid.GetInt32() : (int?)null)
            .ToList();
    }

    public async ValueTask DisposeAsync()
    {
        var pids = RecordedPids().OfType<int>().ToList();
        if (File.Exists(StateFile)) await RunAsync("down");
        // Also what cluster.json does not list: a VM the control plane started just before its proxy was killed.
        foreach (var pid in pids.Concat(OwnedPids()))
            if (ServiceProcess.IsAlive(pid)) OsUser.Signal(pid, OsUser.SigKill);
        try { Directory.Delete(WorkDir, recursive: true); } catch (IOException) { }
    }

    /// <summary>
    /// Every live process whose command line names this instance's (unique, temporary) folder, and
    /// their descendants (PostgreSQL backends do not name it).
    /// </summary>
    public IReadOnlyList<int> OwnedPids()
    {
        var roots = new List<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid) || pid == Environment.ProcessId) continue;
            try
            {
                if (File.ReadAllText(Path.Combine(dir, "cmdline")).Replace('\0', ' ').Contains(WorkDir, StringComparison.Ordinal)) roots.Add(pid);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { } // exited meanwhile
        }
        return roots.Concat(Chaos.ProcessTree.Descendants(roots)).Distinct().ToList();
    }

    /// <summary>A random base whose ports (safekeepers, ps1, ps2 and the controller at base+5..7, the proxy at base+18/19) are free on 127.0.0.1.</summary>
    private static int FindFreePortRange()
    {
        for (int attempt = 0; attempt < 100; attempt++)
        {
            // Below the ephemeral range: services are killed and started again on the same ports, and
            // meanwhile no outgoing connection of any process may take one of them.
            int basePort = Random.Shared.Next(10000, Math.Max(10001, ServiceProcess.FirstEphemeralPort() - 20));
            int[] ports = [basePort, basePort + 1, basePort + 2, basePort + 5, basePort + 6, basePort + 7,
                basePort + 10, basePort + 11, basePort + 12, basePort + 15, basePort + 16, basePort + 17, basePort + 18, basePort + 19];
            if (ports.All(IsFree)) return basePort;
        }
        throw new InvalidOperationException("no free port range found");
    }

    private static bool IsFree(int port)
    {
        try
        {
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            socket.Bind(new IPEndPoint(IPAddress.Loopback, port));
            return true;
        }
        catch (SocketException) { return false; }
    }
}
