using System.Diagnostics;
using Npgsql;

namespace Storage.Proxy.Bench;

/// <summary>
/// A client that commits in a loop (one connection string, a new connection after each error,
/// retried every 20 ms) and measures a failover: from <see cref="MarkKilled"/> to the first commit
/// on a connection opened after it. Counts acknowledged commits, so a test can check none was lost.
/// </summary>
public sealed class CommitProbe(string connectionString, string insertSql) : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private long _killed = long.MaxValue, _recovered, _acknowledged;
    private Task? _client;

    public long Acknowledged => Interlocked.Read(ref _acknowledged);

    /// <summary>Starts committing and lets it run steadily for a second.</summary>
    public async Task StartAsync()
    {
        _client = Task.Run(RunAsync);
        await Task.Delay(1000);
        if (_client.IsCompleted) await _client; // surfaces an unexpected end
    }

    public void MarkKilled() => Interlocked.Exchange(ref _killed, Stopwatch.GetTimestamp());

    /// <summary>Time from the kill to the first commit on a connection opened after it.</summary>
    public async Task<TimeSpan> WaitRecoveredAsync(TimeSpan timeout)
    {
        var client = _client ?? throw new InvalidOperationException("not started");
        if (await Task.WhenAny(client, Task.Delay(timeout)) != client) throw new TimeoutException($"no commit within {timeout} of the kill");
        await client;
        return Stopwatch.GetElapsedTime(Interlocked.Read(ref _killed), Interlocked.Read(ref _recovered));
    }

    private async Task RunAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            long opened = Stopwatch.GetTimestamp();
            try
            {
                await using var connection = new NpgsqlConnection(connectionString);
                await connection.OpenAsync(_stop.Token);
                await using var insert = new NpgsqlCommand(insertSql, connection);
                while (!_stop.IsCancellationRequested)
                {
                    await insert.ExecuteNonQueryAsync(_stop.Token);
                    Interlocked.Increment(ref _acknowledged);
                    if (opened > Interlocked.Read(ref _killed) && Interlocked.CompareExchange(ref _recovered, Stopwatch.GetTimestamp(), 0) == 0) return;
                }
            }
            catch (Exception) when (!_stop.IsCancellationRequested) { await Task.Delay(20); }
            catch (OperationCanceledException) { }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        if (_client is not null)
        {
            try { await _client.WaitAsync(TimeSpan.FromSeconds(60)); }
            catch (Exception e) when (e is NpgsqlException or OperationCanceledException or TimeoutException) { }
        }
        _stop.Dispose();
    }
}
