using Npgsql;

namespace Storage.Cli.Chaos;

/// <summary>
/// Opens client connections through the proxy from the cluster's postgresql:// string, as an
/// application would. Settings that shape what the client can conclude:
/// no pooling (a broken connection is never handed out again); a connect timeout long enough for
/// the proxy to wake or reattach the endpoint; and no waiting for a cancel after a command timeout
/// (Cancellation Timeout=-1 breaks the connection at once, so a COMMIT that timed out is always
/// "unknown", never a success PostgreSQL sends after cancelling its wait for the safekeepers).
/// </summary>
public sealed class ProxyConnector
{
    private readonly string _connectionString;

    /// <param name="connectTimeout">Default 60 s: the proxy holds a new connection while the control plane attaches the endpoint.</param>
    public ProxyConnector(string postgresUri, TimeSpan commandTimeout, TimeSpan? connectTimeout = null)
    {
        if (!Uri.TryCreate(postgresUri, UriKind.Absolute, out var uri) || uri.Scheme is not ("postgresql" or "postgres"))
            throw new CliError($"'{postgresUri}' is not a postgresql:// connection string");
        var user = uri.UserInfo.Split(':', 2);
        var builder = new NpgsqlConnectionStringBuilder
        {
            Host = uri.Host,
            Port = uri.IsDefaultPort ? 5432 : uri.Port,
            Username = Uri.UnescapeDataString(user[0]),
            Password = user.Length > 1 ? Uri.UnescapeDataString(user[1]) : null,
            Database = uri.AbsolutePath.Trim('/') is { Length: > 0 } db ? Uri.UnescapeDataString(db) : "postgres",
            Pooling = false,
            Timeout = (int)(connectTimeout ?? TimeSpan.FromSeconds(60)).TotalSeconds,
            CommandTimeout = (int)commandTimeout.TotalSeconds,
            CancellationTimeout = -1,
        };
        foreach (var pair in uri.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var kv = pair.Split('=', 2);
            if (kv[0] == "options" && kv.Length == 2) builder.Options = Uri.UnescapeDataString(kv[1]);
        }
        _connectionString = builder.ConnectionString;
    }

    public async Task<NpgsqlConnection> OpenAsync(CancellationToken ct = default)
    {
        var connection = new NpgsqlConnection(_connectionString);
        try
        {
            await connection.OpenAsync(ct);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    /// <summary>Runs one statement on a connection of its own.</summary>
    public async Task ExecuteAsync(string sql, CancellationToken ct = default)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync(ct);
    }

    /// <summary>
    /// The failures a client sees when the server, the proxy or the network fails (as opposed to a
    /// bug in this program): they end an operation and the session reconnects.
    /// </summary>
    public static bool IsClientFailure(Exception e) =>
        e is NpgsqlException or IOException or System.Net.Sockets.SocketException or TimeoutException or InvalidOperationException or OperationCanceledException;
}
