using System.Globalization;
using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging;
using Storage.Core;
using Storage.Core.Auth;
using Storage.Core.Errors;
using Storage.Core.Postgres.Wire;

namespace Storage.Safekeeper.Replication;

/// <summary>
/// One client of the replication port: start-up (SSL refused, a token as the cleartext password,
/// the timeline named in the options), then replication commands until it goes. Whatever the
/// client sends, the worst outcome is an ErrorResponse and this connection closed.
/// </summary>
internal sealed class ReplicationConnection(Socket socket, TimelineRegistry registry, ReplicationAuthenticator authenticator,
    SafekeeperMetrics metrics, WalSenderSettings settings, TimeProvider time, ILogger log)
{
    /// <summary>How long start-up and authentication may take (PostgreSQL's authentication_timeout).</summary>
    public static readonly TimeSpan StartupTimeout = TimeSpan.FromSeconds(60);

    private readonly string _peer = socket.RemoteEndPoint?.ToString() ?? "?";
    private PipeReader _input = null!;
    private PipeWriter _output = null!;

    /// <summary>An authenticated session: who, which timeline, under what name.</summary>
    private sealed record Session(Timeline Timeline, Caller Caller, string ApplicationName);

    public async Task RunAsync(CancellationToken stopping)
    {
        metrics.ReplicationConnectionOpened();
        socket.NoDelay = true;
        await using var stream = new NetworkStream(socket, ownsSocket: true);
        _input = PipeReader.Create(stream, new StreamPipeReaderOptions(bufferSize: 64 * 1024));
        _output = PipeWriter.Create(stream);
        bool started = false;
        try
        {
            Session? session;
            using (var startup = CancellationTokenSource.CreateLinkedTokenSource(stopping))
            {
                startup.CancelAfter(StartupTimeout);
                try { session = await StartAsync(startup.Token); }
                catch (OperationCanceledException) when (!stopping.IsCancellationRequested)
                {
                    throw new ReplicationError(SqlStates.ProtocolViolation, $"start-up not finished within {StartupTimeout.TotalSeconds:F0} s", fatal: true, reason: "timeout");
                }
            }
            if (session is null) return;
            started = true;
            log.LogInformation("replication client {Peer} ({ApplicationName}, {Scope} {Subject}) connected to {Timeline}",
                _peer, session.ApplicationName, ScopeNames.Name(session.Caller.Scope), session.Caller.Subject, session.Timeline.Key);
            await ServeAsync(session, stopping);
        }
        catch (Exception e) when (e is ReplicationError or InvalidDataException)
        {
            // InvalidDataException: a message that does not frame (a bad length word).
            var error = e as ReplicationError ?? ReplicationError.Protocol(e.Message);
            if (!started) metrics.ReplicationRefused(error.Reason);
            log.LogWarning("replication client {Peer} {Outcome}: {SqlState} {Message}", _peer, started ? "disconnected" : "refused", error.SqlState, error.Message);
            await TrySendAsync(error, fatal: true);
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            await TrySendAsync(new ReplicationError(SqlStates.AdminShutdown, "terminating connection: the safekeeper is shutting down"), fatal: true);
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
            log.LogInformation("replication client {Peer} connection lost: {Error}", _peer, e.Message);
        }
        catch (Exception e)
        {
            log.LogError(e, "replication client {Peer}: unexpected failure", _peer);
            await TrySendAsync(new ReplicationError(SqlStates.InternalError, "internal error on the safekeeper: " + e.Message), fatal: true);
        }
        finally
        {
            try { await _input.CompleteAsync(); } catch (Exception) { }
            try { await _output.CompleteAsync(); } catch (Exception) { }
            metrics.ReplicationConnectionClosed();
        }
    }

    /// <summary>Start-up and authentication; null when the client left (or only cancelled) before.</summary>
    private async Task<Session?> StartAsync(CancellationToken ct)
    {
        StartupPacket.Startup? startup = null;
        while (startup is null)
        {
            switch (await StartupPacket.ReadAsync(_input, ct))
            {
                case null or StartupPacket.CancelRequest: return null;
                case StartupPacket.EncryptionRequest:
                    BackendMessages.WriteEncryptionRefused(_output);
                    await _output.FlushAsync(ct);
                    break;
                case StartupPacket.Startup s: startup = s; break;
            }
        }
        if (startup.Get("user") is not { Length: > 0 }) throw ReplicationError.Protocol("no PostgreSQL user name specified in startup packet");
        if (startup.Get("replication")?.ToLowerInvariant() is not ("true" or "on" or "yes" or "1"))
            throw new ReplicationError(SqlStates.FeatureNotSupported,
                "a safekeeper serves physical replication connections only (replication=true)", fatal: true, reason: "not_replication");
        var key = TimelineAddress.Parse(startup.Get("options"));

        // Authenticate before saying anything about the timeline (whether it exists is not for strangers).
        BackendMessages.WriteAuthentication(_output, BackendMessages.AuthenticationCleartextPassword);
        await _output.FlushAsync(ct);
        var password = await ReadPasswordAsync(ct);
        if (password is null) return null;
        var caller = await authenticator.AuthenticateAsync(password, key.TenantId);

        Timeline timeline;
        try { timeline = registry.Get(key); }
        catch (ServiceException e)
        {
            throw new ReplicationError(e.Kind == FailureKind.NotFound ? SqlStates.UnknownTimeline : SqlStates.CannotConnectNow, e.Message, fatal: true,
                reason: e.Kind == FailureKind.NotFound ? "unknown_timeline" : "timeline_unavailable");
        }
        var applicationName = startup.Get("application_name") is { Length: > 0 } name ? name : "unnamed";
        WelcomeMessages(timeline, applicationName);
        await _output.FlushAsync(ct);
        return new Session(timeline, caller, applicationName);
    }

    /// <summary>The PasswordMessage's password; null when the client left instead.</summary>
    private async Task<string?> ReadPasswordAsync(CancellationToken ct)
    {
        var next = await PgFraming.ReadAsync(_input, ct);
        if (next is null) return null;
        var (message, consumed) = next.Value;
        try
        {
            if (message.Type != (byte)'p')
                throw ReplicationError.Protocol($"expected a password message, got message type \"{(char)message.Type}\"");
            var body = message.Body.ToArray();
            int end = Array.IndexOf(body, (byte)0);
            if (end < 0) throw ReplicationError.Protocol("invalid password message: no terminating zero");
            return Encoding.UTF8.GetString(body, 0, end);
        }
        finally { _input.AdvanceTo(consumed); }
    }

    private void WelcomeMessages(Timeline timeline, string applicationName)
    {
        BackendMessages.WriteAuthentication(_output, BackendMessages.AuthenticationOk);
        uint version = timeline.Identity.PgVersion == 0 ? 150000 : timeline.Identity.PgVersion;
        foreach (var (name, value) in new[]
        {
            // Clients check these: pg_receivewal refuses servers of another major version and without integer datetimes.
            ("server_version", $"{version / 10000}.{version % 100}"),
            ("server_encoding", "UTF8"),
            ("client_encoding", "UTF8"),
            ("DateStyle", "ISO, MDY"),
            ("integer_datetimes", "on"),
            ("standard_conforming_strings", "on"),
            ("application_name", applicationName),
        })
            BackendMessages.WriteParameterStatus(_output, name, value);
        BackendMessages.WriteBackendKeyData(_output, Environment.ProcessId, RandomNumberGenerator.GetInt32(int.MaxValue));
        BackendMessages.WriteReadyForQuery(_output);
    }

    /// <summary>Runs commands until the client terminates; an ERROR answers one command, a FATAL one ends the connection.</summary>
    private async Task ServeAsync(Session session, CancellationToken ct)
    {
        while (true)
        {
            var next = await PgFraming.ReadAsync(_input, ct);
            if (next is null) return;
            var (message, consumed) = next.Value;
            string sql;
            try
            {
                switch (message.Type)
                {
                    case (byte)'X': return;
                    case (byte)'Q':
                        var body = message.Body.ToArray();
                        sql = Encoding.UTF8.GetString(body, 0, Math.Max(0, Array.IndexOf(body, (byte)0) is var z and >= 0 ? z : body.Length));
                        break;
                    case (byte)'P' or (byte)'B' or (byte)'E' or (byte)'S':
                        throw ReplicationError.Protocol("extended query protocol not supported in a replication connection");
                    default:
                        throw ReplicationError.Protocol($"invalid frontend message type {message.Type}");
                }
            }
            finally { _input.AdvanceTo(consumed); }

            try
            {
                if (await RunAsync(session, sql, ct) == StreamEnd.Terminated) return;
            }
            catch (ReplicationError e) when (!e.Fatal)
            {
                log.LogInformation("replication client {Peer}: {Sql} failed: {SqlState} {Message}", _peer, sql, e.SqlState, e.Message);
                BackendMessages.WriteError(_output, "ERROR", e.SqlState, e.Message, e.Hint);
                BackendMessages.WriteReadyForQuery(_output);
            }
            await _output.FlushAsync(ct);
        }
    }

    private async Task<StreamEnd> RunAsync(Session session, string sql, CancellationToken ct)
    {
        var timeline = session.Timeline;
        switch (ReplicationCommand.Parse(sql))
        {
            case ReplicationCommand.Empty:
                BackendMessages.WriteEmptyQueryResponse(_output);
                break;
            case ReplicationCommand.IdentifySystem:
                var (_, _, commit, _) = timeline.Positions();
                WriteRows([("systemid", BackendMessages.TextOid), ("timeline", BackendMessages.Int4Oid), ("xlogpos", BackendMessages.TextOid), ("dbname", BackendMessages.TextOid)],
                    [timeline.Identity.SystemId.ToString(CultureInfo.InvariantCulture), "1", commit.ToString(), null], "IDENTIFY_SYSTEM");
                break;
            case ReplicationCommand.TimelineHistory h:
                // Safekeepers keep PostgreSQL timeline 1 only, which has no history file (PostgreSQL answers the same).
                throw new ReplicationError(SqlStates.UndefinedFile, $"could not open file \"pg_wal/{h.Timeline:X8}.history\": timeline {h.Timeline} has no history on a safekeeper (only timeline 1 exists)");
            case ReplicationCommand.Show show:
                WriteRows([(show.Name, BackendMessages.TextOid)], [ShowValue(show.Name, timeline)], "SHOW");
                break;
            case ReplicationCommand.ClearSearchPath:
                WriteRows([("set_config", BackendMessages.TextOid)], [""], "SELECT 1");
                break;
            case ReplicationCommand.StartReplication start:
                return await StreamAsync(session, start, ct);
        }
        BackendMessages.WriteReadyForQuery(_output);
        return StreamEnd.CopyDone;
    }

    private static string ShowValue(string name, Timeline timeline) => name switch
    {
        "wal_segment_size" => $"{timeline.Identity.WalSegmentSize / (1024 * 1024)}MB",
        "data_directory_mode" => "0700",
        "server_version" => $"{timeline.Identity.PgVersion / 10000}.{timeline.Identity.PgVersion % 100}",
        "integer_datetimes" => "on",
        _ => throw new ReplicationError(SqlStates.UndefinedObject, $"unrecognized configuration parameter \"{name}\""),
    };

    private void WriteRows(IReadOnlyList<(string, int)> columns, IReadOnlyList<string?> row, string tag)
    {
        BackendMessages.WriteRowDescription(_output, columns);
        BackendMessages.WriteDataRow(_output, row);
        BackendMessages.WriteCommandComplete(_output, tag);
    }

    private async Task<StreamEnd> StreamAsync(Session session, ReplicationCommand.StartReplication command, CancellationToken ct)
    {
        var timeline = session.Timeline;
        if (command.Slot is not null)
            throw new ReplicationError(SqlStates.UndefinedObject, $"replication slot \"{command.Slot}\" does not exist: safekeepers keep no slots");
        if (command.Timeline is { } tli && tli != 1)
            throw new ReplicationError(SqlStates.FeatureNotSupported, $"requested timeline {tli} is not in this server's history: safekeepers serve timeline 1");
        var start = StartPosition.Resolve(command.Start, timeline, new WalGeometry(timeline.Identity.WalSegmentSize), registry.Node.NodeId);
        log.LogInformation("replication client {Peer} ({ApplicationName}) streams {Timeline} from {Start} (asked for {Requested})",
            _peer, session.ApplicationName, timeline.Key, start, command.Start);

        BackendMessages.WriteCopyBothResponse(_output);
        await _output.FlushAsync(ct);
        using var progress = new StandbyProgress(metrics, new StandbyLabel(timeline.Identity.TenantId, timeline.Identity.TimelineId, session.ApplicationName));
        StreamEnd end;
        try { end = await new WalSender(timeline, _input, _output, progress, settings, time).StreamAsync(start, ct); }
        catch (ServiceException e)
        {
            // In the middle of a copy an error ends the connection, as in PostgreSQL's walsender.
            throw new ReplicationError(e is WalRemovedException ? SqlStates.UndefinedFile : SqlStates.InternalError, e.Message, fatal: true);
        }
        log.LogInformation("replication client {Peer} ({ApplicationName}) stopped streaming {Timeline} at {Sent} ({End})",
            _peer, session.ApplicationName, timeline.Key, progress.Sent, end);
        if (end == StreamEnd.Terminated) return end;
        // As PostgreSQL: CopyDone, then the end of START_STREAMING and START_REPLICATION (libpqrcv_endstreaming reads both).
        BackendMessages.WriteCopyDone(_output);
        BackendMessages.WriteCommandComplete(_output, "START_STREAMING");
        BackendMessages.WriteCommandComplete(_output, "START_REPLICATION");
        return end;
    }

    private async Task TrySendAsync(ReplicationError e, bool fatal)
    {
        try
        {
            BackendMessages.WriteError(_output, fatal ? "FATAL" : "ERROR", e.SqlState, e.Message, e.Hint);
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await _output.FlushAsync(timeout.Token);
        }
        catch (Exception) { /* the client is gone */ }
    }
}
