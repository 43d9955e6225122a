using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Storage.Core.Postgres;

/// <summary>Settings for a <see cref="ScratchPostgres"/>.</summary>
public sealed record ScratchPostgresOptions
{
    /// <summary>Scratch servers skip fsync by default: their data is thrown away.</summary>
    public bool Fsync { get; init; }

    /// <summary>Extra postgresql.conf lines as name/value pairs (values are written verbatim).</summary>
    public IReadOnlyDictionary<string, string> Settings { get; init; } = new Dictionary<string, string>();

    public TimeSpan StartTimeout { get; init; } = TimeSpan.FromSeconds(30);
    public TimeSpan StopTimeout { get; init; } = TimeSpan.FromSeconds(30);
    public PostgresBinaries? Binaries { get; init; }
}

/// <summary>
/// A throw-away PostgreSQL server: a fresh initdb'd data directory in a temp dir, listening on a
/// free port of 127.0.0.1. The postgres process is our direct child; we only ever signal it by its
/// own PID. Disposing kills it and deletes the temp dir.
/// </summary>
public sealed class ScratchPostgres : IAsyncDisposable
{
    private readonly ScratchPostgresOptions _options;
    private Process? _server;
    private StreamWriter? _log;
    private readonly object _logLock = new();

    public PostgresBinaries Binaries { get; }
    /// <summary>The temp dir holding the data directory, the socket dir and the server log.</summary>
    public string BaseDirectory { get; }
    public string DataDirectory => Path.Combine(BaseDirectory, "data");
    public string SocketDirectory => Path.Combine(BaseDirectory, "sock");
    public string LogFile => Path.Combine(BaseDirectory, "postgres.log");
    public string PgWalDirectory => Path.Combine(DataDirectory, "pg_wal");
    public int Port { get; private set; }
    public string Host => "127.0.0.1";
    public int? ProcessId => _server?.Id;
    public bool IsRunning => _server is { HasExited: false };

    private ScratchPostgres(ScratchPostgresOptions options)
    {
        _options = options;
        Binaries = options.Binaries ?? PostgresBinaries.Locate();
        BaseDirectory = Directory.CreateTempSubdirectory("scratch-pg-").FullName;
    }

    /// <summary>initdb + start; waits until the server accepts queries.</summary>
    public static async Task<ScratchPostgres> StartAsync(ScratchPostgresOptions? options = null, CancellationToken ct = default)
    {
        var pg = new ScratchPostgres(options ?? new ScratchPostgresOptions());
        try
        {
            await pg.InitDbAsync(ct);
            await pg.StartServerAsync(ct);
            return pg;
        }
        catch
        {
            await pg.DisposeAsync();
            throw;
        }
    }

    private async Task InitDbAsync(CancellationToken ct)
    {
        Directory.CreateDirectory(SocketDirectory);
        await OsUser.GiveToPostgresAsync(BaseDirectory, ct);
        var psi = OsUser.StartInfoAsPostgres(Binaries.InitDb,
            ["-D", DataDirectory, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8", "--locale=C"]);
        (await ProcessRunner.RunAsync(psi, TimeSpan.FromSeconds(120), ct)).ThrowIfFailed("initdb");

        Port = Processes.ServiceProcess.FreePort();
        var conf = new StringBuilder();
        conf.AppendLine("# added by ScratchPostgres");
        conf.AppendLine("listen_addresses = '127.0.0.1'");
        conf.AppendLine(CultureInfo.InvariantCulture, $"port = {Port}");
        conf.AppendLine(CultureInfo.InvariantCulture, $"unix_socket_directories = '{SocketDirectory}'");
        conf.AppendLine(CultureInfo.InvariantCulture, $"fsync = {(_options.Fsync ? "on" : "off")}");
        foreach (var (name, value) in _options.Settings)
            conf.AppendLine(CultureInfo.InvariantCulture, $"{name} = {value}");
        // Appending keeps the file's owner (postgres).
        await File.AppendAllTextAsync(Path.Combine(DataDirectory, "postgresql.conf"), conf.ToString(), ct);
    }

    private async Task StartServerAsync(CancellationToken ct)
    {
        _log ??= new StreamWriter(LogFile, append: true) { AutoFlush = true };
        var psi = OsUser.StartInfoAsPostgres(Binaries.Postgres, ["-D", DataDirectory]);
        psi.RedirectStandardOutput = true;
        psi.RedirectStandardError = true;
        var server = new Process { StartInfo = psi };
        server.OutputDataReceived += (_, e) => WriteLog(e.Data);
        server.ErrorDataReceived += (_, e) => WriteLog(e.Data);
        if (!server.Start()) throw new InvalidOperationException("could not start postgres");
        _server = server;
        server.BeginOutputReadLine();
        server.BeginErrorReadLine();
        await WaitUntilReadyAsync(ct);
    }

    /// <summary>Starts the server again after <see cref="StopAsync"/>.</summary>
    public Task RestartAsync(CancellationToken ct = default)
    {
        if (IsRunning) throw new InvalidOperationException("server is already running");
        _server?.Dispose();
        _server = null;
        return StartServerAsync(ct);
    }

    private void WriteLog(string? line)
    {
        if (line == null) return;
        lock (_logLock) _log?.WriteLine(line);
    }

    private async Task WaitUntilReadyAsync(CancellationToken ct)
    {
        var deadline = Stopwatch.StartNew();
        string lastError = "";
        while (deadline.Elapsed < _options.StartTimeout)
        {
            ct.ThrowIfCancellationRequested();
            if (_server!.HasExited)
                throw new InvalidOperationException($"postgres exited during startup with code {_server.ExitCode}; log:\n{ReadLogTail()}");
            var result = await ProcessRunner.RunAsync(Binaries.Psql, PsqlArguments("select 1"), TimeSpan.FromSeconds(10), ct);
            if (result.Succeeded) return;
            lastError = result.StandardError;
            await Task.Delay(100, ct);
        }
        throw new TimeoutException($"postgres did not accept connections within {_options.StartTimeout.TotalSeconds:0} s: {lastError.Trim()}\nlog:\n{ReadLogTail()}");
    }

    private List<string> PsqlArguments(string sql) =>
        ["-X", "-v", "ON_ERROR_STOP=1", "-h", Host, "-p", Port.ToString(CultureInfo.InvariantCulture), "-U", "postgres", "-d", "postgres", "-At", "-c", sql];

    /// <summary>Runs SQL through psql and returns its unaligned, tuples-only output.</summary>
    public async Task<string> RunSqlAsync(string sql, CancellationToken ct = default)
    {
        var result = await ProcessRunner.RunAsync(Binaries.Psql, PsqlArguments(sql), TimeSpan.FromMinutes(5), ct);
        if (!result.Succeeded)
            throw new InvalidOperationException($"SQL failed ({result.ExitCode}): {sql}\n{result.StandardError.Trim()}");
        return result.StandardOutput;
    }

    /// <summary>Fast shutdown (SIGINT to our PID); SIGKILL if it does not stop in time.</summary>
    public async Task StopAsync()
    {
        var server = _server;
        if (server == null || server.HasExited) return;
        OsUser.Signal(server.Id, OsUser.SigInt);
        using var cts = new CancellationTokenSource(_options.StopTimeout);
        try
        {
            await server.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            OsUser.Signal(server.Id, OsUser.SigKill);
            await server.WaitForExitAsync();
        }
        server.WaitForExit(); // flush log readers
    }

    public string ReadLogTail(int maxChars = 4000)
    {
        try
        {
            string text;
            lock (_logLock)
            {
                using var fs = new FileStream(LogFile, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
                using var reader = new StreamReader(fs);
                text = reader.ReadToEnd();
            }
            return text.Length > maxChars ? text[^maxChars..] : text;
        }
        catch (IOException) { return ""; }
    }

    public async ValueTask DisposeAsync()
    {
        var server = _server;
        if (server != null)
        {
            if (!server.HasExited)
            {
                OsUser.Signal(server.Id, OsUser.SigKill);
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                try { await server.WaitForExitAsync(cts.Token); } catch (OperationCanceledException) { }
            }
            server.Dispose();
            _server = null;
        }
        lock (_logLock)
        {
            _log?.Dispose();
            _log = null;
        }
        try { Directory.Delete(BaseDirectory, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
