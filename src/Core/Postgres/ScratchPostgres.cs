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

    /// <summary>pg_hba.conf lines, written before the server first starts (no reload racing a first login); null keeps initdb's trust.</summary>
    public IReadOnlyList<string>? Hba { get; init; }

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
    private PostgresServer? _server;

    public PostgresBinaries Binaries { get; }
    /// <summary>The temp dir holding the data directory, the socket dir and the server log.</summary>
    public string BaseDirectory { get; }
    public string DataDirectory => Path.Combine(BaseDirectory, "data");
    public string SocketDirectory => Path.Combine(BaseDirectory, "sock");
    public string LogFile => Path.Combine(BaseDirectory, "postgres.log");
    public string PgWalDirectory => Path.Combine(DataDirectory, "pg_wal");
    public int Port { get; private set; }
    public string Host => "127.0.0.1";
    public int? ProcessId => _server?.ProcessId;
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
        if (_options.Hba is { } hba) await PostgresSettings.WriteHbaAsync(DataDirectory, hba, ct);
    }

    private async Task StartServerAsync(CancellationToken ct)
    {
        _server = await PostgresServer.StartAsync(Binaries, DataDirectory, LogFile, Host, Port, _options.StartTimeout, ct);
    }

    /// <summary>Starts the server again after <see cref="StopAsync"/>.</summary>
    public async Task RestartAsync(CancellationToken ct = default)
    {
        if (IsRunning) throw new InvalidOperationException("server is already running");
        if (_server != null) await _server.DisposeAsync();
        _server = null;
        await StartServerAsync(ct);
    }

    /// <summary>Runs SQL through psql and returns its unaligned, tuples-only output.</summary>
    public Task<string> RunSqlAsync(string sql, CancellationToken ct = default) =>
        (_server ?? throw new InvalidOperationException("server is not running")).RunSqlAsync(sql, ct: ct);

    /// <summary>Fast shutdown (SIGINT to our PID); SIGKILL if it does not stop in time.</summary>
    public Task StopAsync() => _server?.StopAsync(ShutdownMode.Fast, _options.StopTimeout) ?? Task.CompletedTask;

    public string ReadLogTail(int maxChars = 4000) => _server?.ReadLogTail(maxChars) ?? "";

    public async ValueTask DisposeAsync()
    {
        if (_server != null) await _server.DisposeAsync();
        _server = null;
        try { Directory.Delete(BaseDirectory, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
