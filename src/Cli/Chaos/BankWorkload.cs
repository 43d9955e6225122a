using Npgsql;

namespace Storage.Cli.Chaos;

/// <summary>
/// A bank: a fixed number of accounts with a fixed total. Two clients transfer random amounts in
/// serializable transactions (one that fails on a serialization failure or deadlock is tried again);
/// a reader checks the number of accounts and the total on every read.
/// </summary>
public sealed class BankWorkload(ProxyConnector connector, History history, int seed)
{
    public const string TransferName = "bank:transfer";
    public const string ReadName = "bank:read";
    public const int Accounts = 5;
    public const long InitialBalance = 100;
    public const long Total = Accounts * InitialBalance;
    private const int Transferers = 2;
    private static readonly TimeSpan TransferPace = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan ReadPace = TimeSpan.FromMilliseconds(200);
    private const string ReadSql = "select count(*), coalesce(sum(balance), 0)::bigint from chaos_bank";

    public Task SetupAsync(CancellationToken ct) => connector.ExecuteAsync(
        "drop table if exists chaos_bank; create table chaos_bank (id int primary key, balance bigint not null); " +
        $"insert into chaos_bank select g, {InitialBalance} from generate_series(1, {Accounts}) g", ct);

    public Task RunAsync(CancellationToken stop) =>
        Task.WhenAll(Enumerable.Range(0, Transferers).Select(i => Task.Run(() => TransferAsync(new Random(seed + i), stop)))
            .Append(Task.Run(() => ReaderAsync(stop))));

    private async Task TransferAsync(Random random, CancellationToken stop)
    {
        await using var session = new ClientSession(connector);
        int from = 0, to = 0;
        long amount = 0;
        var result = new TxResult(OpOutcome.Ok);
        while (true)
        {
            if (!result.Retryable) (from, to, amount) = NextTransfer(random); // else the same transfer again
            var start = history.Clock.Now;
            result = await session.TransactAsync("begin isolation level serializable", async connection =>
            {
                // One statement: it takes both rows' locks in index order, so two transfers never wait on each other in a cycle.
                await using var update = new NpgsqlCommand(
                    "update chaos_bank set balance = balance + case when id = $1 then -$3 else $3 end where id in ($1, $2)", connection)
                    { Parameters = { new() { Value = from }, new() { Value = to }, new() { Value = amount } } };
                if (await update.ExecuteNonQueryAsync() != 2) throw new InvalidOperationException($"accounts {from} and {to} are not both in chaos_bank");
            });
            history.Add(new Operation(TransferName, OpKind.Transfer, 0, amount, start, history.Clock.Now, result.Outcome, result.Error));
            if (!await Pause.AfterAsync(result.Retryable ? OpOutcome.Ok : result.Outcome, TransferPace, stop)) return;
        }
    }

    /// <summary>Two different accounts and an amount of 1..20.</summary>
    private static (int From, int To, long Amount) NextTransfer(Random random)
    {
        int from = random.Next(1, Accounts + 1), to = random.Next(1, Accounts);
        if (to >= from) to++;
        return (from, to, random.Next(1, 21));
    }

    private async Task ReaderAsync(CancellationToken stop)
    {
        await using var session = new ClientSession(connector);
        while (true)
        {
            var outcome = await ReadAsync(session);
            if (!await Pause.AfterAsync(outcome, ReadPace, stop)) return;
        }
    }

    /// <summary>One read of the number of accounts and the total, recorded; also the final check.</summary>
    public async Task<OpOutcome> ReadAsync(ClientSession session)
    {
        var start = history.Clock.Now;
        var (row, error) = await session.QueryAsync(ReadSql, r => new[] { r.GetInt64(0), r.GetInt64(1) });
        var outcome = row is null ? OpOutcome.Failed : OpOutcome.Ok;
        history.Add(new Operation(ReadName, OpKind.Read, row?[0] ?? 0, row?[1] ?? 0, start, history.Clock.Now, outcome, error));
        return outcome;
    }
}
