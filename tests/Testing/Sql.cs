using Npgsql;

namespace Storage.Testing;

/// <summary>Plain SQL against a compute's PostgreSQL (as the endpoint role), for tests.</summary>
public static class Sql
{
    public static string ConnectionString(ComputeCluster cluster, ComputeVm vm) =>
        $"Host=127.0.0.1;Port={vm.PostgresPort};Username={ComputeCluster.Role};Password={cluster.Password};Database=postgres;Pooling=false;Timeout=15;Command Timeout=0";

    public static async Task<long> ScalarAsync(string connectionString, string sql, CancellationToken ct = default)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(ct);
        await using var command = new NpgsqlCommand(sql, connection);
        return Convert.ToInt64(await command.ExecuteScalarAsync(ct));
    }

    public static async Task<string> TextAsync(string connectionString, string sql, CancellationToken ct = default)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(ct);
        await using var command = new NpgsqlCommand(sql, connection);
        return Convert.ToString(await command.ExecuteScalarAsync(ct)) ?? "";
    }

    public static async Task ExecAsync(string connectionString, string sql, CancellationToken ct = default)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(ct);
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync(ct);
    }

    /// <summary>
    /// Runs <paramref name="sql"/> (its scalar result, 0 when none) through a fresh connection, tried again every 200 ms while it fails with
    /// a PostgreSQL or connection error (a compute restarting) until <paramref name="timeout"/>.
    /// </summary>
    public static async Task<long> RunWithRetryAsync(string connectionString, string sql, TimeSpan timeout)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            try { return await ScalarAsync(connectionString, sql); }
            catch (NpgsqlException) when (clock.Elapsed < timeout) { await Task.Delay(200); }
        }
    }
}
