using Npgsql;

namespace Storage.Cli.Chaos;

/// <summary>How a transaction ended for the client; SqlState is PostgreSQL's code when it answered with an error.</summary>
public sealed record TxResult(OpOutcome Outcome, string? Error = null, string? SqlState = null)
{
    /// <summary>A serialization failure or deadlock: the transaction did nothing and may simply be tried again.</summary>
    public bool Retryable => SqlState is PostgresErrorCodes.SerializationFailure or PostgresErrorCodes.DeadlockDetected;
}

/// <summary>
/// One client's connection through the proxy, opened on first use and dropped after a failure so the
/// next operation reconnects (as an application does during a failover). Runs a transaction and
/// classifies its outcome by where it failed.
/// </summary>
public sealed class ClientSession(ProxyConnector connector, string? sessionSetup = null) : IAsyncDisposable
{
    private NpgsqlConnection? _connection;

    /// <summary>
    /// BEGIN, <paramref name="body"/>, COMMIT. A failure before COMMIT is sent, or an ERROR answer to
    /// COMMIT (PostgreSQL aborted it), is Failed; anything else while COMMIT is in flight (the
    /// connection broke, a timeout, a FATAL) is Unknown: it may have committed.
    /// </summary>
    public async Task<TxResult> TransactAsync(string begin, Func<NpgsqlConnection, Task> body)
    {
        NpgsqlConnection connection;
        try
        {
            connection = await ConnectionAsync();
            await ExecuteAsync(connection, begin);
            await body(connection);
        }
        catch (Exception e) when (ProxyConnector.IsClientFailure(e))
        {
            await AfterFailureAsync(e);
            return new TxResult(OpOutcome.Failed, Describe(e), (e as PostgresException)?.SqlState);
        }
        try
        {
            await ExecuteAsync(connection, "commit");
            return new TxResult(OpOutcome.Ok);
        }
        catch (PostgresException e) when (e.InvariantSeverity == "ERROR")
        {
            return new TxResult(OpOutcome.Failed, Describe(e), e.SqlState);
        }
        catch (Exception e) when (ProxyConnector.IsClientFailure(e))
        {
            await DropAsync();
            return new TxResult(OpOutcome.Unknown, Describe(e));
        }
    }

    /// <summary>One query returning one row; a failure drops the connection.</summary>
    public async Task<(T? Row, string? Error)> QueryAsync<T>(string sql, Func<NpgsqlDataReader, T> read) where T : class
    {
        try
        {
            var connection = await ConnectionAsync();
            await using var command = new NpgsqlCommand(sql, connection);
            await using var reader = await command.ExecuteReaderAsync();
            if (!await reader.ReadAsync()) return (null, "no row");
            return (read(reader), null);
        }
        catch (Exception e) when (ProxyConnector.IsClientFailure(e))
        {
            await DropAsync();
            return (null, Describe(e));
        }
    }

    private async Task<NpgsqlConnection> ConnectionAsync()
    {
        if (_connection is { State: System.Data.ConnectionState.Open }) return _connection;
        await DropAsync();
        var connection = await connector.OpenAsync();
        try
        {
            if (sessionSetup is not null) await ExecuteAsync(connection, sessionSetup);
        }
        catch
        {
            await connection.DisposeAsync(); // never used without its setup (a remote_write writer committing with on)
            throw;
        }
        return _connection = connection;
    }

    /// <summary>An ERROR leaves the session usable once the transaction is rolled back; anything else drops it.</summary>
    private async Task AfterFailureAsync(Exception e)
    {
        if (e is PostgresException { InvariantSeverity: "ERROR" } && _connection is { State: System.Data.ConnectionState.Open } connection)
        {
            try
            {
                await ExecuteAsync(connection, "rollback");
                return;
            }
            catch (Exception rollback) when (ProxyConnector.IsClientFailure(rollback)) { }
        }
        await DropAsync();
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, string sql)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    private async Task DropAsync()
    {
        if (_connection is null) return;
        try { await _connection.DisposeAsync(); }
        catch (Exception e) when (ProxyConnector.IsClientFailure(e)) { }
        _connection = null;
    }

    /// <summary>SQLSTATE and message, or the exception type and message: short enough for the report.</summary>
    public static string Describe(Exception e) => e is PostgresException pg ? $"{pg.SqlState} {pg.MessageText}" : $"{e.GetType().Name}: {e.Message}";

    public ValueTask DisposeAsync() => new(DropAsync());
}
