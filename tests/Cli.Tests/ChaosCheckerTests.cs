using Storage.Cli.Chaos;

namespace Storage.Cli.Tests;

/// <summary>The checker of `storagectl chaos` on made-up histories: what counts as lost, phantom, stale or a bank violation.</summary>
public sealed class ChaosCheckerTests
{
    private static TimeSpan S(double seconds) => TimeSpan.FromSeconds(seconds);

    private static Operation Append(long id, OpOutcome outcome, double end = 1) =>
        new(AppendLogWorkload.NameOf("on"), OpKind.Append, id, 0, S(end - 0.1), S(end), outcome);

    private static Operation Write(long value, double start, double end, OpOutcome outcome = OpOutcome.Ok) =>
        new(RegisterWorkload.WriteName, OpKind.Write, 1, value, S(start), S(end), outcome);

    private static Operation Read(long value, double start, double end, string workload = RegisterWorkload.ReadName) =>
        new(workload, OpKind.Read, 1, value, S(start), S(end), OpOutcome.Ok);

    [Fact]
    public void An_acknowledged_id_missing_at_the_end_is_lost_an_unknown_one_is_not()
    {
        Operation[] history = [Append(1, OpOutcome.Ok), Append(2, OpOutcome.Ok), Append(3, OpOutcome.Unknown), Append(4, OpOutcome.Unknown), Append(5, OpOutcome.Failed)];
        var verdict = HistoryChecker.CheckLog(history, new HashSet<long> { 1, 3 });
        Assert.Equal([2L], verdict.Lost.Select(o => o.Key));
        Assert.Empty(verdict.Phantoms);
        Assert.Equal((1, 1), (verdict.UnknownPresent, verdict.UnknownMissing));
    }

    [Fact]
    public void A_failed_id_present_at_the_end_is_a_phantom()
    {
        var verdict = HistoryChecker.CheckLog([Append(1, OpOutcome.Ok), Append(2, OpOutcome.Failed)], new HashSet<long> { 1, 2 });
        Assert.Empty(verdict.Lost);
        Assert.Equal([2L], verdict.Phantoms.Select(o => o.Key));
    }

    [Fact]
    public void A_register_read_below_a_write_acknowledged_before_it_began_is_stale()
    {
        Operation[] history =
        [
            Write(1, 0.0, 1.0), Write(2, 1.0, 2.0), Write(3, 2.0, 5.0, OpOutcome.Unknown), Write(4, 5.0, 6.0),
            Read(2, 2.5, 2.6), // fine: 2 was the newest acknowledged
            Read(1, 3.0, 3.1), // stale: 2 was acknowledged at 2.0
            Read(3, 4.0, 4.1), // fine: an unknown write may be visible
            Read(3, 5.5, 7.0), // fine: 4 was acknowledged after this read began
            Read(3, 6.5, 6.6, RegisterWorkload.SessionReadName), // stale: 4 was acknowledged at 6.0 (a long-lived session's read counts alike)
        ];
        var stale = HistoryChecker.CheckRegister(history);
        Assert.Equal([(1L, 2L), (3L, 4L)], stale.Select(s => (s.Read.Value, s.LastAcknowledgedWrite.Value)));
    }

    [Fact]
    public void A_bank_read_with_another_total_or_another_number_of_accounts_is_a_violation()
    {
        Operation BankRead(long accounts, long total, OpOutcome outcome = OpOutcome.Ok) => new(BankWorkload.ReadName, OpKind.Read, accounts, total, S(1), S(2), outcome);
        Operation[] history =
        [
            BankRead(BankWorkload.Accounts, BankWorkload.Total), BankRead(BankWorkload.Accounts, BankWorkload.Total - 7),
            BankRead(BankWorkload.Accounts - 1, BankWorkload.Total), BankRead(0, 0, OpOutcome.Failed),
            new(BankWorkload.TransferName, OpKind.Transfer, 0, 7, S(1), S(2), OpOutcome.Ok),
        ];
        Assert.Equal(2, HistoryChecker.CheckBank(history, BankWorkload.Accounts, BankWorkload.Total).Count);
    }

    [Fact]
    public void A_loss_is_blamed_on_the_fault_in_effect_or_else_the_next_one_and_the_report_fails()
    {
        var during = new FaultRecord(1, new FaultSpec(FaultKind.Parse("kill-two-safekeepers"), [1, 2], S(5))) { InjectedAt = S(10), HealedAt = S(15), HealthyAt = S(20) };
        // In the same step, injected after the write was acknowledged: blamed with the first (a loss may need both).
        var sameStep = new FaultRecord(1, new FaultSpec(FaultKind.Parse("kill-postgres"), [], TimeSpan.Zero, S(4))) { InjectedAt = S(14), HealedAt = S(14), HealthyAt = S(20) };
        var next = new FaultRecord(2, new FaultSpec(FaultKind.Parse("kill-vm"), [], TimeSpan.Zero)) { InjectedAt = S(30), HealedAt = S(30), HealthyAt = S(40) };
        FaultRecord[] faults = [during, sameStep, next];
        Operation[] history = [Append(1, OpOutcome.Ok, end: 12), Append(2, OpOutcome.Ok, end: 25), Append(3, OpOutcome.Ok, end: 26), Append(4, OpOutcome.Unknown, end: 31)];
        var log = HistoryChecker.CheckLog(history, new HashSet<long> { 3 });

        var report = ChaosReportBuilder.Build(1, S(60), S(60), history, faults, log, [], []);
        Assert.Equal((2, 2, 3, 1), (report.Lost, report.ExitCode, report.Acknowledged, report.Unknown));
        var stats = report.Faults.ToDictionary(f => f.Kind);
        Assert.Equal((1, 1, 1), (stats["kill-two-safekeepers"].Injected, stats["kill-two-safekeepers"].Lost, stats["kill-two-safekeepers"].AcknowledgedDuring));
        Assert.Equal((1, 1, 0), (stats["kill-vm"].Injected, stats["kill-vm"].Lost, stats["kill-vm"].AcknowledgedDuring));
        Assert.Equal((1, 1), (stats["kill-postgres"].Injected, stats["kill-postgres"].Lost));
        Assert.Contains(report.Violations, v => v.StartsWith("LOST log:on id 1") && v.Contains("kill-two-safekeepers") && v.Contains("kill-postgres"));
        Assert.Contains(report.Violations, v => v.StartsWith("LOST log:on id 2") && v.Contains("kill-vm"));

        var clean = ChaosReportBuilder.Build(1, S(60), S(60), history, faults, HistoryChecker.CheckLog(history, new HashSet<long> { 1, 2, 3 }), [], []);
        Assert.Equal((0, 0), (clean.Lost, clean.ExitCode));
    }

    [Fact]
    public void Unavailability_is_the_longest_time_without_an_acknowledged_write_while_a_fault_is_in_effect()
    {
        var fault = new FaultRecord(1, new FaultSpec(FaultKind.Parse("kill-proxy"), [], S(3))) { InjectedAt = S(10), HealthyAt = S(20) };
        TimeSpan[] acks = [S(9), S(10.5), S(17.5), S(18), S(24), S(40)];
        // 10.5 -> 17.5 is the longest gap; the last gap counted ends at the first ack after healthy (24), not at 40.
        Assert.Equal(S(7), FaultImpact.LongestWithoutAck(fault, acks, S(60)));
        // No acknowledgement after the injection: unavailable until the end of the run.
        Assert.Equal(S(50), FaultImpact.LongestWithoutAck(fault, [S(9)], S(60)));
        Assert.Equal(TimeSpan.Zero, FaultImpact.LongestWithoutAck(new FaultRecord(1, fault.Spec), acks, S(60)));
    }
}
