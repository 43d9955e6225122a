using System.Formats.Tar;
using System.Globalization;
using Microsoft.Extensions.Logging;
using Storage.Core;
using Storage.Core.Postgres;
using Storage.Core.Storage;

namespace Storage.Pageserver.Images;

/// <summary>
/// A PostgreSQL 15 in standby mode that replays one timeline's ingested WAL, so images can be
/// taken from it with pg_basebackup. It reads WAL with a restore_command that copies segment
/// layers from a feed directory, and polls again for the growing last segment. The feed is the
/// pageserver's WAL directory itself when the postgres user can read it; otherwise hard links to
/// the layer files in a directory it can read (the bytes are the same inodes, so the growing
/// segment is seen as it grows).
/// </summary>
internal sealed class ReplayInstance : IAsyncDisposable
{
    private const string ConfFile = "pageserver_replay.conf";
    private readonly PostgresBinaries _binaries;
    private readonly string _layerDirectory;
    private readonly ILogger _logger;
    private PostgresServer? _server;

    /// <summary>Files the replay instance's own data directory has that images must not carry.</summary>
    public static readonly string[] ReplayOnlyFiles = ["standby.signal", "recovery.signal", ConfFile, "postmaster.pid", "postmaster.opts", "backup_manifest"];

    public ReplayInstance(PostgresBinaries binaries, string directory, string layerDirectory, ILogger logger)
    {
        _binaries = binaries;
        _layerDirectory = layerDirectory;
        _logger = logger;
        Directory = directory;
        FeedDirectory = OsUser.CanPostgresReach(Path.Combine(layerDirectory, "x")) ? layerDirectory : Path.Combine(directory, "feed");
    }

    public string Directory { get; }
    public string DataDirectory => Path.Combine(Directory, "data");
    /// <summary>Short and under /tmp: a Unix socket path may not exceed 107 bytes.</summary>
    public string SocketDirectory => Path.Combine(Path.GetTempPath(), "ps-replay-" + Convert.ToHexString(
        System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(Directory)))[..12].ToLowerInvariant());
    public string LogFile => Path.Combine(Directory, "postgres.log");
    public string FeedDirectory { get; }
    public bool IsRunning => _server is { HasExited: false };
    public int? ProcessId => _server?.ProcessId;
    private bool SeparateFeed => FeedDirectory != _layerDirectory;

    /// <summary>Starts the instance on its existing data directory, or builds one from <paramref name="image"/> first.</summary>
    public async Task StartAsync(Func<Task<Stream>> openImage, int port, CancellationToken ct)
    {
        System.IO.Directory.CreateDirectory(Directory);
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(Directory, (UnixFileMode)0b111_101_101);
        System.IO.Directory.CreateDirectory(SocketDirectory);
        if (SeparateFeed) { System.IO.Directory.CreateDirectory(FeedDirectory); RefreshFeed(); }
        if (PostgresServer.KillLeftoverPostmaster(DataDirectory) is { } leftover)
            _logger.LogWarning("killed replay PostgreSQL pid {Pid} left running by a previous pageserver", leftover);
        if (!File.Exists(Path.Combine(DataDirectory, "PG_VERSION")))
        {
            if (System.IO.Directory.Exists(DataDirectory)) System.IO.Directory.Delete(DataDirectory, recursive: true);
            await using (var tar = await openImage())
                await ExtractForReplayAsync(tar, ct);
        }
        await ConfigureAsync(port, ct);
        await OsUser.GiveToPostgresAsync(Directory, ct);
        await OsUser.GiveToPostgresAsync(SocketDirectory, ct);
        _server = await PostgresServer.StartAsync(_binaries, DataDirectory, LogFile, SocketDirectory, port, TimeSpan.FromSeconds(60), ct);
        _logger.LogInformation("replay instance started in {Directory} (pid {Pid}), WAL from {Feed}", Directory, _server.ProcessId, FeedDirectory);
    }

    /// <summary>Drops the data directory so the next start rebuilds it from an image.</summary>
    public void Reset()
    {
        if (System.IO.Directory.Exists(DataDirectory)) System.IO.Directory.Delete(DataDirectory, recursive: true);
    }

    private async Task ExtractForReplayAsync(Stream tar, CancellationToken ct)
    {
        System.IO.Directory.CreateDirectory(DataDirectory);
        await using var reader = new TarReader(tar);
        while (await reader.GetNextEntryAsync(copyData: false, ct) is { } entry)
        {
            var target = Path.GetFullPath(Path.Combine(DataDirectory, entry.Name));
            if (!target.StartsWith(Path.GetFullPath(DataDirectory), StringComparison.Ordinal))
                throw new InvalidDataException($"image entry '{entry.Name}' points outside the data directory");
            if (entry.EntryType == TarEntryType.Directory) { System.IO.Directory.CreateDirectory(target); continue; }
            if (entry.Name.StartsWith("pg_wal/", StringComparison.Ordinal) && entry.Name != "pg_wal/") continue;
            System.IO.Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            await entry.ExtractToFileAsync(target, overwrite: true, ct);
        }
        System.IO.Directory.CreateDirectory(Path.Combine(DataDirectory, "pg_wal", "archive_status"));
        // An initdb image is a clean shutdown; a standby starts from its checkpoint as it is.
        File.WriteAllText(Path.Combine(DataDirectory, "standby.signal"), "");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(DataDirectory, (UnixFileMode)0b111_000_000);
    }

    private async Task ConfigureAsync(int port, CancellationToken ct)
    {
        var conf = Path.Combine(DataDirectory, "postgresql.conf");
        var include = $"include_if_exists = '{ConfFile}'";
        if (!File.ReadLines(conf).Contains(include)) await File.AppendAllTextAsync(conf, "\n" + include + "\n", ct);
        var cleanup = SeparateFeed ? $"archive_cleanup_command = '{_binaries.Tool("pg_archivecleanup")} \"{FeedDirectory}\" %r'\n" : "";
        await File.WriteAllTextAsync(Path.Combine(DataDirectory, ConfFile), string.Join('\n',
            $"port = {port.ToString(CultureInfo.InvariantCulture)}",
            "listen_addresses = ''",
            $"unix_socket_directories = '{SocketDirectory}'",
            // Missing files (the next segment, timeline history) are normal: no message for them.
            $"restore_command = 'cp \"{FeedDirectory}/%f\" \"%p\" 2>/dev/null'",
            cleanup.TrimEnd('\n'),
            "hot_standby = on",
            "wal_retrieve_retry_interval = 1s",  // how often the growing last segment is read again
            "fsync = off",                   // a cache: images are made durable by the pageserver
            "shared_buffers = 32MB",
            "checkpoint_timeout = 30s",      // restartpoints follow the compute's checkpoints soon
            "logging_collector = off",
            "synchronous_standby_names = ''",
            "") + "\n", ct);
        if (!File.Exists(Path.Combine(DataDirectory, "standby.signal")))
            await File.WriteAllTextAsync(Path.Combine(DataDirectory, "standby.signal"), "", ct);
        await PostgresSettings.WriteHbaAsync(DataDirectory, ["local all all trust", "local replication all trust"], ct);
    }

    /// <summary>Links layer files the feed does not have yet (only when the feed is separate).</summary>
    public void RefreshFeed()
    {
        if (!SeparateFeed) return;
        foreach (var file in System.IO.Directory.EnumerateFiles(_layerDirectory))
        {
            var name = Path.GetFileName(file);
            if (name.Contains('.')) continue; // index files, downloads in progress
            var link = Path.Combine(FeedDirectory, name);
            if (File.Exists(link)) continue;
            if (!HardLink.TryCreate(file, link)) File.Copy(file, link + ".tmp", overwrite: true); // another file system: a copy, refreshed below
            if (File.Exists(link + ".tmp")) File.Move(link + ".tmp", link, overwrite: true);
        }
    }

    /// <summary>The last LSN the instance has replayed.</summary>
    public async Task<Lsn> ReplayedLsnAsync(CancellationToken ct)
    {
        if (_server is not { HasExited: false } server) return Lsn.Zero;
        var text = (await server.RunSqlAsync("SELECT pg_last_wal_replay_lsn()", ct: ct)).Trim();
        return Lsn.TryParse(text, out var lsn) ? lsn : Lsn.Zero;
    }

    /// <summary>
    /// Takes a pg_basebackup (tar, without WAL) of the instance into <paramref name="directory"/>:
    /// base.tar and backup_manifest.
    /// </summary>
    public async Task BaseBackupAsync(string directory, CancellationToken ct)
    {
        if (_server is not { HasExited: false } server) throw new InvalidOperationException("the replay instance is not running");
        var psi = OsUser.StartInfoAsPostgres(_binaries.PgBaseBackup,
            ["-h", SocketDirectory, "-p", server.Port.ToString(CultureInfo.InvariantCulture), "-U", "postgres",
             "-D", directory, "-Ft", "-X", "none", "-c", "fast", "--no-sync"]);
        (await ProcessRunner.RunAsync(psi, TimeSpan.FromMinutes(30), ct)).ThrowIfFailed("pg_basebackup");
    }

    public string ReadLogTail() => _server?.ReadLogTail() ?? "";

    public async ValueTask DisposeAsync()
    {
        if (_server is null) return;
        try { await _server.StopAsync(ShutdownMode.Fast, TimeSpan.FromSeconds(20)); }
        catch (Exception e) { _logger.LogWarning("replay instance stop: {Error}", e.Message); }
        await _server.DisposeAsync();
        _server = null;
    }
}
