using Npgsql;

namespace Storage.Cli.Chaos;

/// <summary>
/// An append-only log: rows with unique ids, one per transaction, from three writers that commit with
/// synchronous_commit on, remote_write and remote_apply. Every id whose COMMIT returned success must
/// be in the table at the end.
/// </summary>
public sealed class AppendLogWorkload(ProxyConnector connector, History history)
{
    public static readonly IReadOnlyList<string> Modes = ["on", "remote_write", "remote_apply"];
    private static readonly TimeSpan Pace = TimeSpan.FromMilliseconds(50);
    private long _lastId;

    public static string NameOf(string mode) => $"log:{mode}";

    public Task SetupAsync(CancellationToken ct) =>
        connector.ExecuteAsync("drop table if exists chaos_log; create table chaos_log (id bigint primary key, writer text not null)", ct);

    /// <summary>Runs the three writers until <paramref name="stop"/>; the operation in flight then completes.</summary>
    public Task RunAsync(CancellationToken stop) => Task.WhenAll(Modes.Select(mode => Task.Run(() => WriterAsync(mode, stop))));

    private async Task WriterAsync(string mode, CancellationToken stop)
    {
        await using var session = new ClientSession(connector, $"set synchronous_commit = {mode}");
        while (true)
        {
            long id = Interlocked.Increment(ref _lastId);
            var start = history.Clock.Now;
            var (outcome, error, _) = await session.TransactAsync("begin", async connection =>
            {
                await using var insert = new NpgsqlCommand("insert into chaos_log (id, writer) values ($1, $2)", connection)
                    { Parameters = { new() { Value = id }, new() { Value = mode } } };
                await insert.ExecuteNonQueryAsync();
            });
            history.Add(new Operation(NameOf(mode), OpKind.Append, id, 0, start, history.Clock.Now, outcome, error));
            if (!await Pause.AfterAsync(outcome, Pace, stop)) return;
        }
    }

    /// <summary>The ids in the table now.</summary>
    public async Task<IReadOnlySet<long>> ReadIdsAsync(CancellationToken ct)
    {
        await using var connection = await connector.OpenAsync(ct);
        await using var command = new NpgsqlCommand("select id from chaos_log", connection);
        await using var reader = await command.ExecuteReaderAsync(ct);
        var ids = new HashSet<long>();
        while (await reader.ReadAsync(ct)) ids.Add(reader.GetInt64(0));
        return ids;
    }
}
