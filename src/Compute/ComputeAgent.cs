using System.Globalization;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;
using Npgsql;
using Storage.Core;
using Storage.Core.Api;
using Storage.Core.Basebackup;
using Storage.Core.Grpc;
using Storage.Core.Observability;
using Storage.Core.Postgres;
using Storage.Proposer;
using Storage.Proto.Compute;

namespace Storage.Compute;

/// <summary>Where one agent keeps its things, and the PostgreSQL port it serves on.</summary>
internal sealed record AgentOptions(string VmId, string WorkDirectory, int PostgresPort, PostgresBinaries Binaries)
{
    public TimeSpan ElectionTimeout { get; init; } = TimeSpan.FromSeconds(30);
    public TimeSpan StartTimeout { get; init; } = TimeSpan.FromSeconds(120);
    /// <summary>
    /// pg_wal keeps at most this much WAL below the commit LSN for a lagging safekeeper: one that
    /// never acknowledges (down for good, a full disk) must not fill the compute's disk. It needs
    /// nothing from pg_wal anyway (it recovers from its peers); the walsender only reads above the
    /// commit LSN.
    /// </summary>
    public long MaxRetainedWalBytes { get; init; } = 1L << 30;
    /// <summary>
    /// PostgreSQL's listen_addresses. Loopback for a VM on the proxy's machine; a VM in a container
    /// of its own listens on its network (e.g. "*"), and then SCRAM logins from the hosts of the
    /// networks it is on (the proxy's) are allowed too.
    /// </summary>
    public string ListenAddresses { get; init; } = Loopback;
    public const string Loopback = "127.0.0.1";
    public string DataDirectory => Path.Combine(PostgresDirectory, "pgdata");
    public string SocketDirectory => Path.Combine(PostgresDirectory, "sock");
    public string PostgresLog => Path.Combine(WorkDirectory, "postgres.log");

    /// <summary>
    /// Where PostgreSQL's files live: the work directory, unless the postgres user cannot reach it
    /// (a root user's home is 0700). The data directory is only a cache, so a folder under the
    /// system temp directory, named after the work directory, serves as well.
    /// </summary>
    public string PostgresDirectory { get; } = OsUser.ReachableDirectory(WorkDirectory, VmId);
}

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
    private readonly Timer _slotTimer;
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

    public ComputeAgent(AgentOptions options, ILogger logger, ComputeMetrics metrics)
    {
        _options = options;
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
        _slotTimer = new Timer(_ => _ = AdvanceRetentionSlotAsync(), null, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
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

    /// <summary>While idle: holds the timeline's newest image ready for a later attach (<see cref="PreparedImageStore"/>).</summary>
    public async Task<PreparedImage> PrepareAsync(PrepareRequest request, CancellationToken ct)
    {
        var (tenant, timeline, pageservers) = Validate(request);
        CancellationToken attachCancels;
        lock (_lock)
        {
            if (_state != ComputeState.Idle)
                throw new RpcException(GrpcStatusCode.FailedPrecondition, $"VM {_options.VmId} is {_state}, not idle: only an idle VM prepares");
            attachCancels = _prepared.Token; // taken with the state: an attach from now on cancels this prepare
        }
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, attachCancels);
        try { return await _prepared.PrepareAsync(tenant, timeline, pageservers, request.Token, linked.Token); }
        catch (OperationCanceledException) when (attachCancels.IsCancellationRequested)
        {
            throw new RpcException(GrpcStatusCode.Aborted, $"VM {_options.VmId} was attached while preparing {tenant}/{timeline}");
        }
        catch (Exception e) when (e is InvalidOperationException or IOException or InvalidDataException)
        {
            throw new RpcException(GrpcStatusCode.Unavailable, $"preparing {tenant}/{timeline} failed: {e.Message}");
        }
    }

    public async Task<ComputeStatus> AttachAsync(AttachRequest request, CancellationToken ct)
    {
        var (tenant, timeline, safekeepers, _) = Validate(request);
        await _operation.WaitAsync(ct);
        try
        {
            lock (_lock)
            {
                if (_state is ComputeState.Running or ComputeState.Attaching)
                    throw new RpcException(GrpcStatusCode.FailedPrecondition,
                        $"VM {_options.VmId} already serves endpoint '{_request?.Endpoint?.EndpointId}' ({_request?.TenantId}/{_request?.TimelineId}); detach it first");
                _restarts = 0; // a new attachment starts its own crash history
                _lastCrash = "";
            }
            return await AttachHoldingOperationAsync(request, tenant, timeline, safekeepers, ct);
        }
        finally { _operation.Release(); }
    }


    /// <summary>Release what is left, then attach (the caller holds the operation lock).</summary>
    private async Task<ComputeStatus> AttachHoldingOperationAsync(AttachRequest request, string tenant, string timeline, IReadOnlyList<Uri> safekeepers, CancellationToken ct)
    {
        await ReleaseAsync(ShutdownMode.Immediate); // a failed, crashed or fenced attachment leaves nothing behind
        lock (_lock)
        {
            _state = ComputeState.Attaching;
            _reason = "";
            _request = request;
            _attachCount++;
            (_builtOn, _builtOnPrepared) = (default, false);
        }
        _metrics.Attached();
        try
        {
            await _prepared.CancelAsync(); // the cores are the attach's now
            await AttachStepsAsync(request, tenant, timeline, safekeepers, ct);
            lock (_lock) _state = ComputeState.Running;
            _log.LogInformation("endpoint {EndpointId} on {TenantId}/{TimelineId} is running on port {Port} from {StartLsn}",
                request.Endpoint.EndpointId, tenant, timeline, _options.PostgresPort, _startLsn);
            return Status();
        }
        catch (Exception e)
        {
            var reason = e is OperationCanceledException ? "attach was cancelled or timed out" : e.Message;
            _log.LogError("attach of {TenantId}/{TimelineId} failed: {Reason}", tenant, timeline, reason);
            await ReleaseAsync(ShutdownMode.Immediate);
            lock (_lock)
            {
                _state = ComputeState.Failed;
                _reason = "attach failed: " + reason;
            }
            throw new RpcException(GrpcStatusCode.Unavailable, $"attach of {tenant}/{timeline} failed: {reason}");
        }
    }

    private async Task AttachStepsAsync(AttachRequest request, string tenant, string timeline, IReadOnlyList<Uri> safekeepers, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(_options.StartTimeout);
        var clock = new PhaseClock();

        // Runs beside the election: it only turns a missing timeline into a clear error at once
        // (the election alone would just time out), and costs a round of connections to wait for.
        var timelineCheck = CheckTimelineExistsAsync(tenant, timeline, safekeepers, request.Token, timeout.Token);
        _ = timelineCheck.ContinueWith(t => t.Exception, TaskContinuationOptions.OnlyOnFaulted);

        // 1. sync-safekeepers: win an election; its start LSN E is where this compute's WAL begins.
        var proposer = new WalProposer(new WalProposerOptions
        {
            TenantId = tenant,
            TimelineId = timeline,
            Safekeepers = safekeepers,
            MinimumTerm = request.MinimumTerm,
            Token = request.Token,
        }, _log);
        lock (_lock) _proposer = proposer;
        proposer.Start();
        using (var election = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token))
        {
            election.CancelAfter(_options.ElectionTimeout);
            try
            {
                var elected = proposer.WaitElectedAsync(election.Token);
                if (await Task.WhenAny(elected, timelineCheck) == timelineCheck) await timelineCheck; // throws if it is missing
                var start = await elected; // an election won on a majority shows the timeline exists
                clock.Mark("election");
                await proposer.WaitForCommitAsync(start, election.Token); // a quorum holds all WAL up to E
                clock.Mark("quorum at E");
                lock (_lock) _startLsn = start;
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                throw new TimeoutException($"no quorum of the safekeepers ({string.Join(", ", safekeepers)}) elected this compute within {_options.ElectionTimeout.TotalSeconds:0} s");
            }
        }
        _log.LogInformation("elected on {TenantId}/{TimelineId} with term {Term}, start LSN {StartLsn}", tenant, timeline, proposer.Term, _startLsn);

        // 2. The data directory at E ("basebackup at E"): on a VM prepared for this timeline, its
        // image plus only the WAL since; otherwise (or if that fails) the whole basebackup.
        WipeDataDirectory();
        var source = new PageserverBasebackupSource(Validate(request).Pageservers, _options.StartTimeout, request.Token);
        if (_prepared.TakeInto(tenant, timeline, _startLsn, _options.DataDirectory) is { } image)
        {
            try
            {
                await source.FetchWalSinceImageAsync(tenant, timeline, _startLsn, image, _options.DataDirectory, timeout.Token);
                lock (_lock) (_builtOn, _builtOnPrepared) = (image, true);
                clock.Mark("WAL since prepared image");
            }
            catch (Exception e) when (!timeout.IsCancellationRequested)
            {
                _log.LogWarning("the WAL since prepared image {Image} of {TenantId}/{TimelineId} could not be fetched, taking a whole basebackup: {Error}",
                    image, tenant, timeline, e.Message);
                WipeDataDirectory();
            }
        }
        if (!_builtOnPrepared)
        {
            var builtOn = await source.FetchAsync(tenant, timeline, _startLsn, _options.DataDirectory, timeout.Token);
            lock (_lock) _builtOn = builtOn;
            clock.Mark("basebackup");
        }
        await ConfigureAsync(request.Endpoint, timeout.Token);
        clock.Mark("configure");

        // 3. PostgreSQL, watched from the moment it starts.
        var postgres = await PostgresServer.StartAsync(_options.Binaries, _options.DataDirectory, _options.PostgresLog,
            _options.SocketDirectory, _options.PostgresPort, _options.StartTimeout, timeout.Token);
        lock (_lock) _postgres = postgres;
        clock.Mark("postgres start");
        new PostmasterRecord(postgres.ProcessId, _options.DataDirectory).WriteTo(_options.WorkDirectory); // for fencing and chaos tools
        _ = postgres.Exited.ContinueWith(t => OnPostgresExited(postgres, t.Result), TaskScheduler.Default);

        // 4. The walproposer, and beside it the endpoint's role and slot: their commit simply waits
        // until the walproposer streams (synchronous_standby_names), so the two connect at once.
        var streamer = new WalStreamer(_options.SocketDirectory, _options.PostgresPort, Superuser, proposer, _startLsn, _log, _metrics);
        using var prepare = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token);
        var roleAndSlot = PrepareRoleAndSlotAsync(request.Endpoint, prepare.Token);
        try { await streamer.StartAsync(timeout.Token); }
        catch
        {
            await prepare.CancelAsync(); // its commit would wait for a walproposer that is not coming
            await Task.WhenAny(roleAndSlot);
            throw;
        }
        lock (_lock) _streamer = streamer;
        clock.Mark("walproposer");
        _ = proposer.Fenced.ContinueWith(t => OnFenced(proposer, t.Result), TaskScheduler.Default);
        _ = streamer.Completion.ContinueWith(t => OnStreamerStopped(streamer, t), TaskScheduler.Default).Unwrap();
        await roleAndSlot;
        clock.Mark("role and slot");
        _metrics.AttachPhases(clock);
        _log.LogInformation("attach of {TenantId}/{TimelineId} at {StartLsn} took: {Phases}", tenant, timeline, _startLsn, clock);
    }

    /// <summary>Fails fast, with a clear reason, when a majority of the safekeepers do not know the timeline.</summary>
    private static async Task CheckTimelineExistsAsync(string tenant, string timeline, IReadOnlyList<Uri> safekeepers, string token, CancellationToken ct)
    {
        var answers = await Task.WhenAll(safekeepers.Select(async sk =>
        {
            try { await SafekeeperClient.StatusAsync(sk, SafekeeperClient.Key(tenant, timeline), TimeSpan.FromSeconds(3), ct, token); return GrpcStatusCode.OK; }
            catch (RpcException e) { return e.Status; }
        }));
        if (answers.Count(a => a == GrpcStatusCode.NotFound) > safekeepers.Count / 2)
            throw new InvalidOperationException($"timeline {tenant}/{timeline} not found on the safekeepers; create it first");
    }

    private async Task ConfigureAsync(EndpointSettings endpoint, CancellationToken ct)
    {
        Directory.CreateDirectory(_options.SocketDirectory);
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(_options.SocketDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        await OsUser.GiveToPostgresAsync(_options.SocketDirectory, ct);
        var settings = new Dictionary<string, string>
        {
            ["listen_addresses"] = _options.ListenAddresses,
            ["port"] = _options.PostgresPort.ToString(CultureInfo.InvariantCulture),
            ["unix_socket_directories"] = _options.SocketDirectory,
            ["wal_level"] = "replica",
            ["synchronous_commit"] = "on",
            ["synchronous_standby_names"] = WalStreamer.ApplicationName,
            ["max_wal_senders"] = "10",
            ["max_replication_slots"] = "10",
            ["wal_sender_timeout"] = "10s",
            // The data directory is a cache: durability is the safekeepers' quorum, and any restart
            // (PostgreSQL crash or a new VM) starts from a fresh basebackup, never from these files.
            // So no fsync, neither per commit nor of the whole directory at start-up (as Neon's computes).
            ["fsync"] = "off",
            ["password_encryption"] = "scram-sha-256",
            ["max_wal_size"] = "1GB",
            // A crashed backend stops the postmaster: the agent, not PostgreSQL, decides what happens next.
            ["restart_after_crash"] = "off",
        };
        foreach (var (name, value) in endpoint.PostgresSettings) settings[name] = value;
        await PostgresSettings.AppendAsync(_options.DataDirectory, settings, ct);
        // The socket directory is private to the agent and postgres: local trust is safe; TCP needs SCRAM.
        await PostgresSettings.WriteHbaAsync(_options.DataDirectory,
        [
            "local all all trust",
            "local replication all trust",
            "host all all 127.0.0.1/32 scram-sha-256",
            "host all all ::1/128 scram-sha-256",
            .. _options.ListenAddresses == AgentOptions.Loopback ? Array.Empty<string>() : ["host all all samenet scram-sha-256"],
        ], ct);
    }

    private async Task PrepareRoleAndSlotAsync(EndpointSettings endpoint, CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(LocalConnectionString());
        await connection.OpenAsync(ct);
        var role = QuoteIdentifier(endpoint.RoleName);
        var password = endpoint.RolePassword.Replace("'", "''");
        var sql = $"""
            DO $$ BEGIN
              IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{endpoint.RoleName}') THEN CREATE ROLE {role} LOGIN; END IF;
            END $$;
            ALTER ROLE {role} WITH LOGIN CREATEDB CREATEROLE PASSWORD '{password}';
            GRANT ALL ON SCHEMA public TO {role};
            GRANT pg_checkpoint, pg_read_all_stats TO {role};
            """;
        await using (var command = new NpgsqlCommand(sql, connection)) await command.ExecuteNonQueryAsync(ct);
        await using (var slot = new NpgsqlCommand(
            $"SELECT pg_create_physical_replication_slot('{RetentionSlot}', true) WHERE NOT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = '{RetentionSlot}')", connection))
            await slot.ExecuteNonQueryAsync(ct);
    }

    /// <summary>
    /// Moves the retention slot to the lowest safekeeper flush LSN, so pg_wal keeps only what some
    /// safekeeper lacks, but never more than <see cref="AgentOptions.MaxRetainedWalBytes"/> below the commit LSN.
    /// </summary>
    private async Task AdvanceRetentionSlotAsync()
    {
        Lsn target;
        lock (_lock)
        {
            if (_state != ComputeState.Running || _proposer is null) return;
            var slowest = _proposer.SafekeeperFlushLsns.Min();
            var commit = _proposer.CommitLsn;
            var retained = (ulong)_options.MaxRetainedWalBytes;
            var bound = commit.Value > retained ? new Lsn(commit.Value - retained) : Lsn.Zero;
            target = Lsn.MaxOf(slowest, bound);
            _retentionNote = slowest < bound
                ? $"a safekeeper lags {(commit - slowest) >> 20} MiB behind the commit LSN: pg_wal keeps only the last {retained >> 20} MiB (it catches up from its peers)"
                : "";
            if (target <= _slotAdvancedTo || target < _startLsn) return;
        }
        try
        {
            await using var connection = new NpgsqlConnection(LocalConnectionString());
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand($"SELECT pg_replication_slot_advance('{RetentionSlot}', '{target}')", connection);
            await command.ExecuteNonQueryAsync();
            lock (_lock) _slotAdvancedTo = target;
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException)
        {
            _log.LogDebug("retention slot not advanced to {Lsn}: {Error}", target, e.Message);
        }
    }

    public async Task<ComputeStatus> DetachAsync(CancellationToken ct)
    {
        await _operation.WaitAsync(ct);
        try
        {
            string? endpoint;
            lock (_lock)
            {
                if (_state == ComputeState.Idle) return Status();
                endpoint = _request?.Endpoint?.EndpointId;
                _state = ComputeState.Detaching;
            }
            await ReleaseAsync(ShutdownMode.Fast);
            lock (_lock)
            {
                _state = ComputeState.Idle;
                _reason = "";
                _request = null;
                _restarts = 0;
                _lastCrash = "";
            }
            _log.LogInformation("endpoint {EndpointId} detached; VM {VmId} is idle", endpoint, _options.VmId);
            return Status();
        }
        finally { _operation.Release(); }
    }

    /// <summary>
    /// Stops PostgreSQL (a fast stop lets the walproposer commit its last WAL first), then the
    /// walproposer and the proposer, and empties the data directory.
    /// </summary>
    private async Task ReleaseAsync(ShutdownMode mode)
    {
        PostgresServer? postgres;
        WalStreamer? streamer;
        WalProposer? proposer;
        lock (_lock)
        {
            (postgres, streamer, proposer) = (_postgres, _streamer, _proposer);
            (_postgres, _streamer, _proposer) = (null, null, null);
            _slotAdvancedTo = Lsn.Zero;
            _retentionNote = "";
        }
        if (postgres != null)
        {
            await postgres.StopAsync(mode, TimeSpan.FromSeconds(30));
            await postgres.DisposeAsync();
        }
        if (streamer != null)
        {
            if (mode != ShutdownMode.Immediate && proposer is { Phase: not ProposerPhase.Fenced })
            {
                try { await proposer.WaitForCommitAsync(streamer.ReceivedUpTo).WaitAsync(TimeSpan.FromSeconds(10)); }
                catch (Exception e) { _log.LogWarning("last WAL up to {Lsn} not confirmed committed: {Error}", streamer.ReceivedUpTo, e.Message); }
            }
            await streamer.DisposeAsync();
        }
        if (proposer != null) await proposer.DisposeAsync();
        File.Delete(PostmasterRecord.PathIn(_options.WorkDirectory));
        WipeDataDirectory();
    }

    private void OnPostgresExited(PostgresServer postgres, int exitCode)
    {
        AttachRequest? request;
        lock (_lock)
        {
            if (_postgres != postgres || _state is not (ComputeState.Running or ComputeState.Attaching)) return;
            _state = ComputeState.Failed;
            _reason = _lastCrash = $"postgres (pid {postgres.ProcessId}) exited unexpectedly: {DescribeExit(exitCode)}";
            request = _request;
        }
        _metrics.PostgresExited();
        _log.LogCritical("endpoint {EndpointId}: {Reason}; restarting it from a fresh basebackup", request?.Endpoint?.EndpointId, _lastCrash);
        if (request != null) _ = RestartAfterCrashAsync(request);
    }

    /// <summary>
    /// PostgreSQL died. Its data directory is only a cache: re-sync the safekeepers and start again
    /// from a fresh basebackup on this VM, backing off if it keeps failing, until it runs or the
    /// endpoint is detached or attached elsewhere.
    /// </summary>
    private async Task RestartAfterCrashAsync(AttachRequest request)
    {
        for (int attempt = 0; ; attempt++)
        {
            ulong restarts;
            lock (_lock) restarts = _restarts;
            // At once the first time; a PostgreSQL that keeps dying waits longer each round (max 30 s).
            var delay = TimeSpan.FromMilliseconds(Math.Min(30_000, 250.0 * ((1 << (int)Math.Min(restarts + (ulong)attempt, 7)) - 1)));
            await Task.Delay(delay);
            await _operation.WaitAsync();
            try
            {
                lock (_lock)
                {
                    if (_request != request || _state != ComputeState.Failed) return; // detached, re-attached or fenced meanwhile
                    _restarts++;
                }
                _metrics.Restarted();
                var (tenant, timeline, safekeepers, _) = Validate(request);
                _log.LogWarning("restarting postgres of endpoint {EndpointId} (restart {Restart})", request.Endpoint.EndpointId, _restarts);
                await AttachHoldingOperationAsync(request, tenant, timeline, safekeepers, CancellationToken.None);
                return;
            }
            catch (RpcException e)
            {
                _log.LogError("restart of endpoint {EndpointId} failed, will retry: {Reason}", request.Endpoint.EndpointId, e.Detail);
            }
            finally { _operation.Release(); }
        }
    }

    private void OnFenced(WalProposer proposer, string reason)
    {
        PostgresServer? postgres;
        lock (_lock)
        {
            if (_proposer != proposer || _state is not (ComputeState.Running or ComputeState.Attaching)) return;
            _state = ComputeState.Fenced;
            _reason = $"another compute took timeline {_request?.TenantId}/{_request?.TimelineId}: {reason}";
            postgres = _postgres;
        }
        _log.LogWarning("endpoint {EndpointId} fenced, stopping postgres: {Reason}", _request?.Endpoint?.EndpointId, _reason);
        // Nothing this PostgreSQL writes can commit any more: stop it at once.
        _ = postgres?.StopAsync(ShutdownMode.Immediate, TimeSpan.FromSeconds(10));
    }

    private async Task OnStreamerStopped(WalStreamer streamer, Task completion)
    {
        if (!completion.IsFaulted) return;
        // A dying PostgreSQL breaks the replication stream first: give its exit the chance to be the reason.
        if (_postgres is { } running) await Task.WhenAny(running.Exited, Task.Delay(500));
        AttachRequest? request;
        lock (_lock)
        {
            if (_streamer != streamer || _state != ComputeState.Running || _postgres is not { HasExited: false }) return;
            _state = ComputeState.Failed;
            _reason = _lastCrash = "walproposer stopped: " + completion.Exception?.GetBaseException().Message;
            request = _request;
        }
        // PostgreSQL can no longer commit without it: start over, as after a crash.
        _log.LogError("endpoint {EndpointId}: {Reason}; restarting postgres from a fresh basebackup", request?.Endpoint?.EndpointId, _lastCrash);
        if (request != null) _ = RestartAfterCrashAsync(request);
    }

    private static string DescribeExit(int code) =>
        code > 128 ? $"killed by signal {code - 128}{(code - 128 == 9 ? " (SIGKILL)" : "")}" : $"exit code {code}";

    public ComputeStatus Status()
    {
        lock (_lock)
        {
            var status = new ComputeStatus
            {
                VmId = _options.VmId,
                State = _state,
                Reason = _reason,
                TenantId = _request?.TenantId ?? "",
                TimelineId = _request?.TimelineId ?? "",
                EndpointId = _request?.Endpoint?.EndpointId ?? "",
                PostgresPort = _options.PostgresPort,
                PostgresPid = _postgres is { HasExited: false } pg ? pg.ProcessId : 0,
                StartLsn = _startLsn.Value,
                AttachCount = _attachCount,
                RestartCount = _restarts,
                LastCrash = _lastCrash,
                Prepared = _prepared.Current,
                BuiltOnImageLsn = _builtOn.End.Value,
                BuiltOnPreparedImage = _builtOnPrepared,
                RetentionLsn = _slotAdvancedTo.Value,
                RetentionNote = _retentionNote,
            };
            if (_proposer is { } proposer)
            {
                status.Term = proposer.Term;
                status.CommitLsn = proposer.CommitLsn.Value;
                status.SafekeeperFlushLsns.AddRange(proposer.SafekeeperFlushLsns.Select(l => l.Value));
            }
            if (_streamer is { } streamer) status.StreamedLsn = streamer.StreamedUpTo.Value;
            if (_state == ComputeState.Running && _request?.Endpoint is { } endpoint)
                status.ConnectionString = $"postgresql://{Uri.EscapeDataString(endpoint.RoleName)}:{Uri.EscapeDataString(endpoint.RolePassword)}@127.0.0.1:{_options.PostgresPort}/postgres";
            return status;
        }
    }

    public HeartbeatResponse Heartbeat()
    {
        lock (_lock)
            return new HeartbeatResponse
            {
                VmId = _options.VmId,
                State = _state,
                Reason = _reason,
                EndpointId = _request?.Endpoint?.EndpointId ?? "",
                CommitLsn = _proposer?.CommitLsn.Value ?? 0,
                RestartCount = _restarts,
                LastCrash = _lastCrash,
                Prepared = _prepared.Current,
            };
    }

    private static (string Tenant, string Timeline, IReadOnlyList<Uri> Pageservers) Validate(PrepareRequest request)
    {
        try
        {
            return (TimelineIds.Normalize(request.TenantId, "tenant_id"), TimelineIds.Normalize(request.TimelineId, "timeline_id"), PageserverUris(request.Pageservers));
        }
        catch (ArgumentException e)
        {
            throw new RpcException(GrpcStatusCode.InvalidArgument, e.Message);
        }
    }

    private static (string Tenant, string Timeline, IReadOnlyList<Uri> Safekeepers, IReadOnlyList<Uri> Pageservers) Validate(AttachRequest request)
    {
        try
        {
            var tenant = TimelineIds.Normalize(request.TenantId, "tenant_id");
            var timeline = TimelineIds.Normalize(request.TimelineId, "timeline_id");
            if (request.Safekeepers.Count == 0) throw new ArgumentException("at least one safekeeper address is needed");
            var safekeepers = request.Safekeepers.Select(s => Uri.TryCreate(s, UriKind.Absolute, out var u) && u.Scheme is "http" or "https"
                ? u : throw new ArgumentException($"safekeeper address '{s}' is not an http:// URI")).ToList();
            if (request.Endpoint is null) throw new ArgumentException("endpoint settings are missing");
            if (!RoleName().IsMatch(request.Endpoint.RoleName)) throw new ArgumentException($"role name '{request.Endpoint.RoleName}' must match {RoleName()}");
            if (string.IsNullOrEmpty(request.Endpoint.RolePassword)) throw new ArgumentException("the endpoint role needs a password");
            return (tenant, timeline, safekeepers, PageserverUris(request.Pageservers));
        }
        catch (ArgumentException e)
        {
            throw new RpcException(GrpcStatusCode.InvalidArgument, e.Message);
        }
    }

    private static List<Uri> PageserverUris(IReadOnlyList<string> addresses)
    {
        if (addresses.Count == 0) throw new ArgumentException("at least one pageserver address is needed (basebackups come from it)");
        return addresses.Select(s => Uri.TryCreate(s, UriKind.Absolute, out var u) && u.Scheme is "http" or "https"
            ? u : throw new ArgumentException($"pageserver address '{s}' is not an http:// URI")).ToList();
    }

    [GeneratedRegex("^[a-z_][a-z0-9_]{0,62}$")]
    private static partial Regex RoleName();

    private static string QuoteIdentifier(string name) => "\"" + name.Replace("\"", "\"\"") + "\"";

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
        await _slotTimer.DisposeAsync();
        await _operation.WaitAsync();
        await ReleaseAsync(ShutdownMode.Fast);
        await _prepared.CancelAsync();
        _prepared.Clear();
    }
}
