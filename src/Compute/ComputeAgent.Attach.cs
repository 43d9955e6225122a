using System.Globalization;
using Microsoft.Extensions.Logging;
using Npgsql;
using Storage.Core.Api;
using Grpc.Core;
using Storage.Core.Errors;
using Storage.Core.Observability;
using Storage.Core.Postgres;
using Storage.Proposer;
using Storage.Proto.Compute;

namespace Storage.Compute;

/// <summary>Attach: election, data directory at the start LSN, PostgreSQL, walproposer, role and slot.</summary>
internal sealed partial class ComputeAgent
{
    public async Task<ComputeStatus> AttachAsync(AttachRequest request, CancellationToken ct)
    {
        var (tenant, timeline, safekeepers, _) = Validate(request);
        await _operation.WaitAsync(ct);
        try
        {
            lock (_lock)
            {
                if (_state is ComputeState.Running or ComputeState.Attaching)
                    throw new PreconditionFailedException(
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
            throw new TemporarilyUnavailableException($"attach of {tenant}/{timeline} failed: {reason}", e);
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
            try { await SafekeeperClient.StatusAsync(sk, SafekeeperClient.Key(tenant, timeline), TimeSpan.FromSeconds(3), ct, token); return StatusCode.OK; }
            catch (RpcException e) { return e.StatusCode; }
        }));
        if (answers.Count(a => a == StatusCode.NotFound) > safekeepers.Count / 2)
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

    private static string QuoteIdentifier(string name) => "\"" + name.Replace("\"", "\"\"") + "\"";
}
