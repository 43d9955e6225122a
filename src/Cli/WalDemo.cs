using Microsoft.Extensions.Logging.Abstractions;
using Spectre.Console;
using Storage.Core;
using Storage.Core.Wal;
using Storage.Proposer;

namespace Storage.Cli;

/// <summary>
/// The demo of `up`: a WalProposer wins the election and streams real PostgreSQL WAL (noop
/// records, each transaction ending with a commit) through the 2-of-3 quorum, continuing where
/// the timeline's WAL ends.
/// </summary>
public sealed class WalDemo(ClusterDirectory dir, ClusterState state)
{
    private const int ChunkBytes = 64 * 1024;

    public static readonly Lsn TimelineStart = new(0x0100_0000); // 0/1000000, a segment start

    /// <summary>Streams about <paramref name="totalBytes"/> of WAL; returns the final commit LSN.</summary>
    public async Task<Lsn> RunAsync(int totalBytes, CancellationToken ct)
    {
        await using var proposer = new WalProposer(new WalProposerOptions
        {
            TenantId = state.TenantId,
            TimelineId = state.TimelineId,
            Safekeepers = state.Safekeepers.Select(s => s.Uri).ToArray(),
        }, NullLogger.Instance);
        proposer.Start();

        using var electionTimeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        electionTimeout.CancelAfter(TimeSpan.FromSeconds(20));
        Lsn start;
        try { start = await proposer.WaitElectedAsync(electionTimeout.Token); }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested) { throw new CliError("the proposer was not elected within 20 s (is a quorum of safekeepers up?)"); }

        var previous = PreviousRecord.Find(state.Safekeepers.Select(s => dir.TimelineDir(s, state)), start, TimelineStart);
        var workload = new SyntheticTransactions(new WalBuilder(start, previousRecord: previous), new Random());

        AnsiConsole.MarkupLine($"proposer elected in term {proposer.Term}, streaming WAL from {start}");
        Lsn commit = start;
        await AnsiConsole.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn())
            .StartAsync(async progress =>
            {
                var task = progress.AddTask("streaming WAL", maxValue: totalBytes);
                // Append everything, then follow the commit LSN as the quorum acknowledges it.
                Lsn end = start;
                while (workload.Builder.EndLsn - start < totalBytes)
                    end = proposer.Append(workload.Next(ChunkBytes));
                var committed = proposer.WaitForCommitAsync(end, ct).WaitAsync(TimeSpan.FromSeconds(30), ct);
                while (!committed.IsCompleted)
                {
                    commit = Lsn.MaxOf(proposer.CommitLsn, start); // 0 until the first commit of this term
                    task.Value = Math.Min(totalBytes, commit - start);
                    task.Description = $"commit {commit}";
                    await Task.WhenAny(committed, Task.Delay(100, ct));
                }
                try { commit = await committed; }
                catch (TimeoutException) { throw new CliError($"WAL up to {end} was not committed within 30 s (commit LSN {proposer.CommitLsn}); is a quorum of safekeepers up?"); }
                task.Value = totalBytes;
            });
        return commit;
    }
}
