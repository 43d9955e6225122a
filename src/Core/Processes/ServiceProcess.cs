using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Storage.Core.Postgres;

namespace Storage.Core.Processes;

/// <summary>
/// A service of this project (safekeeper, pageserver, ...) running as its own OS process, started
/// from its .NET assembly with stdout and stderr appended to a log file. It is ready once it
/// prints a line starting with "READY". It is stopped and killed by its PID, never by name.
/// Detached services outlive the process that started them (storagectl returns, they keep running).
/// </summary>
public sealed class ServiceProcess : IAsyncDisposable
{
    private readonly Process? _process; // null when detached or adopted by PID

    private ServiceProcess(int pid, string logFile, string readyLine, Process? process)
    {
        Pid = pid;
        LogFile = logFile;
        ReadyLine = readyLine;
        _process = process;
    }

    /// <summary>
    /// Runtime settings for every service process. Services share two cores with PostgreSQL, so
    /// idle thread-pool workers must sleep at once instead of spinning (sched_yield) on the cores
    /// PostgreSQL needs: with pgbench through the walproposer this halved the .NET CPU per
    /// transaction and about doubled TPS. (src/Service.props asks for the same in runtimeconfig; the
    /// environment variable is what measurably takes effect.)
    /// </summary>
    public static readonly IReadOnlyDictionary<string, string> RuntimeEnvironment = new Dictionary<string, string>
    {
        // An operator's own setting (in the launcher's environment) wins.
        ["DOTNET_ThreadPool_UnfairSemaphoreSpinLimit"] = Environment.GetEnvironmentVariable("DOTNET_ThreadPool_UnfairSemaphoreSpinLimit") ?? "0",
        // Off (the runtime's default) for every service, also when the launcher (the proxy, which
        // turns it on for its relay) has it on: services run file I/O and process starts in socket
        // continuations, which must not hold up an event thread.
        [InlineSocketCompletions] = "0",
    };

    /// <summary>The runtime's switch that runs socket continuations on its epoll threads.</summary>
    public const string InlineSocketCompletions = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";

    public int Pid { get; }
    public string LogFile { get; }
    public string ReadyLine { get; }

    /// <summary>The assembly of a service that is deployed next to the running program.</summary>
    public static string AssemblyBeside(string assemblyName)
    {
        var path = Path.Combine(AppContext.BaseDirectory, assemblyName + ".dll");
        if (!File.Exists(path)) throw new FileNotFoundException($"{assemblyName}.dll is not next to {AppContext.BaseDirectory}; build the solution first", path);
        return path;
    }

    /// <param name="started">Called with the PID as soon as the process exists, before it is ready (to record it durably).</param>
    public static async Task<ServiceProcess> StartAsync(string assemblyPath, IEnumerable<string> arguments, string logFile,
        bool detached = false, TimeSpan? readyTimeout = null, CancellationToken ct = default, Action<int>? started = null)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(logFile))!);
        long logStart = File.Exists(logFile) ? new FileInfo(logFile).Length : 0;
        var command = string.Join(' ', new[] { "env" }.Concat(RuntimeEnvironment.Select(kv => $"{kv.Key}={kv.Value}"))
            .Concat(new[] { "dotnet", assemblyPath }).Concat(arguments).Select(Quote));
        // exec keeps the PID; setsid (no fork: sh's background child is no group leader) detaches
        // from the caller's session so the service survives it.
        var script = detached
            ? $"setsid {command} >>{Quote(logFile)} 2>&1 </dev/null & echo $!"
            : $"exec {command} >>{Quote(logFile)} 2>&1 </dev/null";
        var psi = new ProcessStartInfo("/bin/sh") { RedirectStandardOutput = detached, UseShellExecute = false };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(script);
        var process = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {command}");
        int pid;
        if (detached)
        {
            var output = await process.StandardOutput.ReadToEndAsync(ct);
            await process.WaitForExitAsync(ct);
            pid = int.Parse(output.Trim());
            process.Dispose();
            process = null;
        }
        else pid = process.Id;

        try
        {
            started?.Invoke(pid);
            var ready = await WaitForReadyLineAsync(logFile, logStart, pid, readyTimeout ?? TimeSpan.FromSeconds(30), ct);
            return new ServiceProcess(pid, logFile, ready, process);
        }
        catch
        {
            OsUser.Signal(pid, OsUser.SigKill);
            process?.WaitForExit(5000);
            process?.Dispose();
            throw;
        }
    }

    private static async Task<string> WaitForReadyLineAsync(string logFile, long from, int pid, TimeSpan timeout, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            ct.ThrowIfCancellationRequested();
            if (File.Exists(logFile))
            {
                using var stream = new FileStream(logFile, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
                stream.Seek(from, SeekOrigin.Begin);
                using var reader = new StreamReader(stream);
                string? line;
                // The service's log writer may split its own lines around the READY write (both go
                // to this file), so READY can land mid-line: look for it anywhere.
                while ((line = await reader.ReadLineAsync(ct)) is not null)
                    if (line.IndexOf("READY ", StringComparison.Ordinal) is int at and >= 0) return line[at..];
            }
            if (!IsAlive(pid))
            {
                var written = Written(logFile, from);
                var message = $"the service exited before it was ready; see {logFile}:\n{(written.Length > 2000 ? written[^2000..] : written)}";
                var portTaken = written.Split('\n').FirstOrDefault(l => l.Contains("address already in use", StringComparison.OrdinalIgnoreCase));
                throw portTaken is null ? new InvalidOperationException(message) : new PortInUseException($"{portTaken.Trim()}\n{message}");
            }
            await Task.Delay(50, ct);
        }
        throw new TimeoutException($"the service was not ready within {timeout.TotalSeconds:0} s; see {logFile}");
    }

    /// <summary>What the service wrote to its log from <paramref name="from"/> on.</summary>
    private static string Written(string logFile, long from)
    {
        try
        {
            var text = File.ReadAllText(logFile);
            return text.Length <= from ? "" : text[(int)from..];
        }
        catch (IOException) { return ""; }
    }

    public static bool IsAlive(int pid)
    {
        if (!OsUser.Signal(pid, 0)) return false;
        // A zombie (exited, not yet reaped) still answers signal 0.
        try { return !File.ReadAllText($"/proc/{pid}/stat").Split(' ')[2].Equals("Z"); }
        catch (IOException) { return false; }
    }

    /// <summary>SIGKILL, at once.</summary>
    public void Kill()
    {
        OsUser.Signal(Pid, OsUser.SigKill);
        _process?.WaitForExit(5000); // reap our child
    }

    /// <summary>SIGTERM, then SIGKILL if it has not exited within <paramref name="grace"/>.</summary>
    public async Task StopAsync(TimeSpan? grace = null)
    {
        await StopPidAsync(Pid, grace ?? TimeSpan.FromSeconds(10));
        _process?.WaitForExit(5000); // reap our child
    }

    /// <summary>SIGTERM the process <paramref name="pid"/>, then SIGKILL if it has not exited within <paramref name="grace"/>.</summary>
    public static async Task StopPidAsync(int pid, TimeSpan grace)
    {
        if (!IsAlive(pid)) return;
        OsUser.Signal(pid, OsUser.SigTerm);
        var deadline = DateTime.UtcNow + grace;
        while (IsAlive(pid) && DateTime.UtcNow < deadline) await Task.Delay(25);
        if (IsAlive(pid)) await KillPidAsync(pid);
    }

    /// <summary>SIGKILL the process <paramref name="pid"/> and wait (up to 5 s) until it is gone.</summary>
    public static async Task KillPidAsync(int pid)
    {
        OsUser.Signal(pid, OsUser.SigKill);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        while (IsAlive(pid) && DateTime.UtcNow < deadline) await Task.Delay(10);
    }

    public async ValueTask DisposeAsync()
    {
        if (_process is not null)
        {
            if (!_process.HasExited) await StopAsync(TimeSpan.FromSeconds(5));
            _process.Dispose();
        }
    }

    /// <summary>A TCP port on 127.0.0.1 that is free right now.</summary>
    /// <summary>
    /// A free listening port on 127.0.0.1, picked at random below the kernel's ephemeral range: a
    /// service restarted on its old port must not find it taken by some client connection's
    /// ephemeral source port, which the OS hands out from that range.
    /// </summary>
    public static int FreePort()
    {
        int ephemeralLow = FirstEphemeralPort();
        for (int attempt = 0; attempt < 200; attempt++)
        {
            int port = Random.Shared.Next(10000, Math.Max(10001, ephemeralLow));
            try
            {
                using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                socket.Bind(new IPEndPoint(IPAddress.Loopback, port));
                return port;
            }
            catch (SocketException) { } // taken: try another
        }
        throw new InvalidOperationException("no free port found below the ephemeral range");
    }

    /// <summary>
    /// The kernel's first ephemeral port: a port below it is never handed to an outgoing connection,
    /// so one picked free stays free until a service binds it (or binds it again after a restart).
    /// </summary>
    public static int FirstEphemeralPort()
    {
        try { return int.Parse(File.ReadAllText("/proc/sys/net/ipv4/ip_local_port_range").Split('\t', ' ')[0]); }
        catch (Exception e) when (e is IOException or FormatException or UnauthorizedAccessException) { return 32768; }
    }

    private static string Quote(string s) => s.All(c => char.IsLetterOrDigit(c) || "-_./:=@,".Contains(c)) ? s : "'" + s.Replace("'", "'\\''") + "'";
}

/// <summary>A service exited before it was ready because a port it was told to listen on was taken.</summary>
public sealed class PortInUseException(string message) : InvalidOperationException(message);
