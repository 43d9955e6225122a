using System.Diagnostics;
using System.Globalization;

namespace Storage.Core.Postgres;

/// <summary>How to stop a postmaster (PostgreSQL's three shutdown signals).</summary>
public enum ShutdownMode
{
    /// <summary>SIGTERM: wait for clients to disconnect.</summary>
    Smart,
    /// <summary>SIGINT: end sessions, write a shutdown checkpoint.</summary>
    Fast,
    /// <summary>SIGQUIT: stop at once, crash recovery on the next start.</summary>
    Immediate,
}

/// <summary>
/// One running postmaster as our direct child process (run as the postgres OS user when we are
/// root), so its exit is noticed the moment it happens and it is only ever signalled by its PID.
/// Its output goes to a log file.
/// </summary>
public sealed class PostgresServer : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StreamWriter _log;
    private readonly object _logLock = new();
    private readonly TaskCompletionSource<int> _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public PostgresBinaries Binaries { get; }
    public string DataDirectory { get; }
    public string LogFile { get; }
    /// <summary>The host psql/pg_isready should use: a socket directory, or 127.0.0.1.</summary>
    public string Host { get; }
    public int Port { get; }
    public int ProcessId { get; }
    public bool HasExited => _exited.Task.IsCompleted;
    /// <summary>Completes with the exit code when the postmaster exits (128+signal if it was killed).</summary>
    public Task<int> Exited => _exited.Task;

    private PostgresServer(PostgresBinaries binaries, string dataDirectory, string logFile, string host, int port)
    {
        Binaries = binaries;
        DataDirectory = dataDirectory;
        LogFile = logFile;
        Host = host;
        Port = port;
        _log = new StreamWriter(logFile, append: true) { AutoFlush = true };
        var psi = OsUser.StartInfoAsPostgres(binaries.Postgres, ["-D", dataDirectory]);
        psi.RedirectStandardOutput = true;
        psi.RedirectStandardError = true;
        psi.RedirectStandardInput = false;
        _process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        _process.OutputDataReceived += (_, e) => WriteLog(e.Data);
        _process.ErrorDataReceived += (_, e) => WriteLog(e.Data);
        _process.Exited += (_, _) => _exited.TrySetResult(_process.ExitCode);
        if (!_process.Start()) throw new InvalidOperationException("could not start postgres");
        ProcessId = _process.Id;
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    /// <summary>
    /// Starts postgres on <paramref name="dataDirectory"/> (its port and sockets come from its
    /// configuration) and waits until it accepts connections on <paramref name="host"/>:<paramref name="port"/>.
    /// </summary>
    public static async Task<PostgresServer> StartAsync(PostgresBinaries binaries, string dataDirectory, string logFile,
        string host, int port, TimeSpan timeout, CancellationToken ct = default)
    {
        var server = new PostgresServer(binaries, dataDirectory, logFile, host, port);
        try
        {
            await server.WaitUntilReadyAsync(timeout, ct);
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Polls postmaster.pid every 10 ms for this postmaster's "ready" status, as <c>pg_ctl -w</c> does
    /// (PostgreSQL writes it once its sockets accept connections): no process per probe, and the start
    /// is seen within 10 ms. Where the file cannot be read (another user's), pg_isready probes instead.
    /// </summary>
    private async Task WaitUntilReadyAsync(TimeSpan timeout, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        string last = "";
        while (clock.Elapsed < timeout)
        {
            ct.ThrowIfCancellationRequested();
            if (HasExited)
                throw new InvalidOperationException($"postgres exited during startup with code {Exited.Result}; log:\n{ReadLogTail()}");
            switch (PidFileSaysReady())
            {
                case true: return;
                case false: await Task.Delay(10, ct); continue;
            }
            var probe = await ProcessRunner.RunAsync(Binaries.PgIsReady,
                ["-q", "-h", Host, "-p", Port.ToString(CultureInfo.InvariantCulture), "-t", "5"], TimeSpan.FromSeconds(10), ct);
            if (probe.Succeeded) return;
            last = probe.StandardError + probe.StandardOutput;
            await Task.Delay(50, ct);
        }
        throw new TimeoutException($"postgres did not accept connections within {timeout.TotalSeconds:0} s {last.Trim()}\nlog:\n{ReadLogTail()}");
    }

    /// <summary>
    /// Whether postmaster.pid names this process with status "ready" (line 8, PM_STATUS_READY; a hot
    /// standby writes it too once it accepts connections); null when the file cannot be read.
    /// </summary>
    private bool? PidFileSaysReady()
    {
        try
        {
            var lines = File.ReadAllLines(System.IO.Path.Combine(DataDirectory, "postmaster.pid"));
            return lines.Length >= 8 && lines[0].Trim() == ProcessId.ToString(CultureInfo.InvariantCulture) && lines[7].Trim() == "ready";
        }
        catch (FileNotFoundException) { return false; } // not written yet
        catch (DirectoryNotFoundException) { return false; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }

    /// <summary>
    /// SIGKILLs a PostgreSQL a previous owner left running on <paramref name="dataDirectory"/> (its
    /// owner died without stopping it): the postmaster named in postmaster.pid and every process of
    /// the instance, orphaned backends included. Returns the postmaster's PID, or null if none ran.
    /// </summary>
    public static int? KillLeftoverPostmaster(string dataDirectory)
    {
        var pidFile = System.IO.Path.Combine(dataDirectory, "postmaster.pid");
        int? pid = File.Exists(pidFile) && int.TryParse(File.ReadLines(pidFile).FirstOrDefault(), out var p) ? p : null;
        var killed = PostgresProcesses.KillAllAsync(dataDirectory, pid).GetAwaiter().GetResult();
        return killed.Count == 0 ? null : pid ?? killed[0];
    }

    /// <summary>Runs SQL through psql as <paramref name="user"/> and returns its unaligned, tuples-only output.</summary>
    public async Task<string> RunSqlAsync(string sql, string user = "postgres", string database = "postgres", CancellationToken ct = default)
    {
        var result = await ProcessRunner.RunAsync(Binaries.Psql,
            ["-X", "-v", "ON_ERROR_STOP=1", "-h", Host, "-p", Port.ToString(CultureInfo.InvariantCulture), "-U", user, "-d", database, "-At", "-c", sql],
            TimeSpan.FromMinutes(5), ct);
        if (!result.Succeeded)
            throw new InvalidOperationException($"SQL failed ({result.ExitCode}): {sql}\n{result.StandardError.Trim()}");
        return result.StandardOutput;
    }

    /// <summary>Sends the shutdown signal of <paramref name="mode"/>; SIGKILL if it has not exited in time.</summary>
    public async Task StopAsync(ShutdownMode mode, TimeSpan timeout)
    {
        if (HasExited) return;
        OsUser.Signal(ProcessId, mode switch { ShutdownMode.Smart => OsUser.SigTerm, ShutdownMode.Fast => OsUser.SigInt, _ => OsUser.SigQuit });
        try { await Exited.WaitAsync(timeout); }
        catch (TimeoutException) { Kill(); await Exited.WaitAsync(TimeSpan.FromSeconds(10)); }
    }

    /// <summary>SIGKILL to the postmaster and every child of it (a busy backend would not notice its postmaster's death).</summary>
    public void Kill()
    {
        if (!HasExited) PostgresProcesses.SigKillAll(DataDirectory, ProcessId);
    }

    private void WriteLog(string? line)
    {
        if (line == null) return;
        lock (_logLock) _log.WriteLine(line);
    }

    public string ReadLogTail(int maxChars = 4000)
    {
        try
        {
            string text;
            lock (_logLock)
            {
                using var fs = new FileStream(LogFile, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
                text = new StreamReader(fs).ReadToEnd();
            }
            return text.Length > maxChars ? text[^maxChars..] : text;
        }
        catch (IOException) { return ""; }
    }

    public async ValueTask DisposeAsync()
    {
        if (!HasExited)
        {
            Kill();
            try { await Exited.WaitAsync(TimeSpan.FromSeconds(10)); } catch (TimeoutException) { }
        }
        try { _process.WaitForExit(1000); } catch (InvalidOperationException) { } // flush the output readers
        _process.Dispose();
        lock (_logLock) _log.Dispose();
    }
}
