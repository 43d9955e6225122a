using Npgsql;

namespace Storage.Cli.Tests;

/// <summary>
/// A client inserting rows one transaction at a time through a connection string, reconnecting
/// after any failure (as an application does during a failover). It records every id whose COMMIT
/// was acknowledged: those rows must survive any crash.
/// </summary>
public sealed class WriteLoop
{
    private readonly List<int> _acked = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;

    private WriteLoop(string connectionString, string table, int firstId) => _loop = Task.Run(() => RunAsync(connectionString, table, firstId));

    /// <summary>Starts inserting ids from <paramref name="firstId"/> into <paramref name="table"/> (id int primary key).</summary>
    public static WriteLoop Start(string connectionString, string table, int firstId) => new(connectionString, table, firstId);

    public int AckedCount { get { lock (_acked) return _acked.Count; } }

    /// <summary>Waits until <paramref name="more"/> further commits are acknowledged.</summary>
    public async Task WaitForMoreAsync(int more, TimeSpan timeout)
    {
        int target = AckedCount + more;
        for (var deadline = DateTime.UtcNow + timeout; AckedCount < target; await Task.Delay(50))
            Assert.True(DateTime.UtcNow < deadline, $"the write loop got only {AckedCount} of {target} commits acknowledged in {timeout.TotalSeconds} s");
    }

    /// <summary>Stops the loop; returns the acknowledged ids.</summary>
    public async Task<IReadOnlyList<int>> StopAsync()
    {
        _stop.Cancel();
        await _loop;
        lock (_acked) return _acked.ToList();
    }

    private async Task RunAsync(string connectionString, string table, int id)
    {
        NpgsqlConnection? connection = null;
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                if (connection is null)
                {
                    connection = new NpgsqlConnection(connectionString);
                    await connection.OpenAsync();
                }
                await using var insert = new NpgsqlCommand($"insert into {table} values ({id})", connection);
                await insert.ExecuteNonQueryAsync();
                lock (_acked) _acked.Add(id);
                id++;
            }
            catch (Exception e) when (e is NpgsqlException or IOException or TimeoutException or InvalidOperationException)
            {
                // Not acknowledged: the row may or may not exist; use a new id, reconnect after a pause.
                id++;
                if (connection is not null) await connection.DisposeAsync();
                connection = null;
                await Task.Delay(100);
            }
        }
        if (connection is not null) await connection.DisposeAsync();
    }
}
