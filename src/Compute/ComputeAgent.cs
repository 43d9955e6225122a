using Microsoft.Extensions.Logging;
using Storage.Core;
using Storage.Core.Basebackup;
using Storage.Core.Postgres;
using Storage.Proposer;
using Storage.Proto.Compute;

namespace Storage.Compute;

/// <summary>
/// One pooled VM: idle until an endpoint is attached, then the owner of one PostgreSQL and its
/// walproposer. Attach and detach run one at a time; PostgreSQL exiting and the proposer being
/// fenced are noticed the moment they happen and change the state at once.
/// </summary>
internal sealed partial class ComputeAgent : IAsyncDisposable
{
    /// <summary>The physical slot that keeps WAL in pg_wal until every safekeeper has it.</summary>
    public const string RetentionSlot = "safekeepers";
    private const string Superuser = "postgres";

    private readonly AgentOptions _options;
    private readonly ILogger _log;
    private readonly ComputeMetrics _metrics;
    private readonly SemaphoreSlim _operation = new(1, 1);
    private readonly object _lock = new();
    private readonly TimeProvider _time;
    private readonly PreparedImageStore _prepared;

    // The current attachment (all guarded by _lock).
    private ComputeState _state = ComputeState.Idle;
    private string _reason = "";
    private AttachRequest? _request;
    private WalProposer? _proposer;
    private PostgresServer? _postgres;
    private WalStreamer? _streamer;
    private Lsn _startLsn;
    private Lsn _slotAdvancedTo;
    private string _retentionNote = "";
    private ulong _attachCount;
    private ulong _restarts;
    private string _lastCrash = "";
    private ImageIdentity _builtOn;
    private bool _builtOnPrepared;

    public ComputeAgent(AgentOptions options, ILogger logger, ComputeMetrics metrics, TimeProvider? time = null)
    {
        _options = options;
        _time = time ?? TimeProvider.System;
        _log = logger;
        _metrics = metrics;
        Directory.CreateDirectory(options.WorkDirectory);
        Directory.CreateDirectory(options.PostgresDirectory);
        // PostgreSQL (as the postgres user) must reach its data and socket directories inside.
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(options.PostgresDirectory, (UnixFileMode)0b111_101_101);
        if (options.PostgresDirectory != options.WorkDirectory)
            logger.LogInformation("the postgres user cannot reach {WorkDir}; PostgreSQL's data directory (a cache) lives in {Directory}", options.WorkDirectory, options.PostgresDirectory);
        KillLeftoverPostmaster();
        WipeDataDirectory(); // a cache: whatever a previous life left is useless
        _prepared = new PreparedImageStore(options.PostgresDirectory, logger);
    }

    private string LocalConnectionString(string database = "postgres") =>
        $"Host={_options.SocketDirectory};Port={_options.PostgresPort};Username={Superuser};Database={database};Pooling=false;Timeout=10";

    /// <summary>Compiles and warms what an attach runs, while idle (<see cref="AgentWarmUp"/>); an attach waits for it.</summary>
    public async Task WarmUpAsync(Uri self)
    {
        await _operation.WaitAsync();
        try { await AgentWarmUp.RunAsync(self, _options, LocalConnectionString(), _log); }
        finally { _operation.Release(); }
    }

    /// <summary>
    /// If this agent was SIGKILLed, the PostgreSQL it started may still run on the data directory.
    /// Its PID is the first line of postmaster.pid; kill it (only if it is a postgres process).
    /// </summary>
    private void KillLeftoverPostmaster()
    {
        if (PostgresServer.KillLeftoverPostmaster(_options.DataDirectory) is { } pid)
            _log.LogWarning("killed PostgreSQL pid {Pid} left running on {DataDirectory} by a previous agent", pid, _options.DataDirectory);
    }

    private void WipeDataDirectory()
    {
        if (Directory.Exists(_options.DataDirectory)) Directory.Delete(_options.DataDirectory, recursive: true);
    }

    public async ValueTask DisposeAsync()
    {
        await _operation.WaitAsync();
        await ReleaseAsync(ShutdownMode.Fast);
        await _prepared.CancelAsync();
        _prepared.Clear();
    }
}
