using Npgsql;

namespace Storage.Cli.Chaos;

/// <summary>
/// Read-your-writes across failovers: one writer sets a register to increasing values (one
/// transaction each); reads must never return less than a value acknowledged before the read began.
/// Reads on new connections through the proxy (periodically and after every fault heals) check where
/// the proxy routes now; reads on long-lived sessions at random intervals check that a session left
/// on a replaced compute cannot answer from its old data.
/// </summary>
public sealed class RegisterWorkload(ProxyConnector connector, History history, int seed)
{
    public const string WriteName = "register:write";
    public const string ReadName = "register:read";
    public const string SessionReadName = "register:read-session";
    private const int Sessions = 2;
    private static readonly TimeSpan WritePace = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan ReadPace = TimeSpan.FromMilliseconds(500);
    private const string ReadSql = "select value from chaos_register where id = 1";

    public Task SetupAsync(CancellationToken ct) => connector.ExecuteAsync(
        "drop table if exists chaos_register; create table chaos_register (id int primary key, value bigint not null); insert into chaos_register values (1, 0)", ct);

    public Task RunAsync(CancellationToken stop) => Task.WhenAll(
        Enumerable.Range(0, Sessions).Select(i => Task.Run(() => SessionReaderAsync(new Random(seed + i), stop)))
            .Append(Task.Run(() => WriterAsync(stop))).Append(Task.Run(() => ReaderAsync(stop))));

    private async Task WriterAsync(CancellationToken stop)
    {
        await using var session = new ClientSession(connector);
        for (long value = 1; ; value++)
        {
            var start = history.Clock.Now;
            var (outcome, error, _) = await session.TransactAsync("begin", async connection =>
            {
                await using var update = new NpgsqlCommand("update chaos_register set value = $1 where id = 1", connection) { Parameters = { new() { Value = value } } };
                await update.ExecuteNonQueryAsync();
            });
            history.Add(new Operation(WriteName, OpKind.Write, 1, value, start, history.Clock.Now, outcome, error));
            if (!await Pause.AfterAsync(outcome, WritePace, stop)) return;
        }
    }

    private async Task ReaderAsync(CancellationToken stop)
    {
        do await ReadAsync();
        while (await Pause.ForAsync(ReadPace, stop));
    }

    /// <summary>Idle for a random while (through a failover, often), then a read on the same session.</summary>
    private async Task SessionReaderAsync(Random random, CancellationToken stop)
    {
        await using var session = new ClientSession(connector);
        while (await Pause.ForAsync(TimeSpan.FromMilliseconds(random.Next(500, 15_000)), stop)) await ReadAsync(session, SessionReadName);
    }

    /// <summary>One read on a new connection (so it goes wherever the proxy routes now), recorded.</summary>
    public async Task ReadAsync()
    {
        await using var session = new ClientSession(connector);
        await ReadAsync(session, ReadName);
    }

    private async Task ReadAsync(ClientSession session, string name)
    {
        var start = history.Clock.Now;
        var (row, error) = await session.QueryAsync(ReadSql, r => new[] { r.GetInt64(0) });
        history.Add(new Operation(name, OpKind.Read, 1, row?[0] ?? 0, start, history.Clock.Now, row is null ? OpOutcome.Failed : OpOutcome.Ok, error));
    }
}
