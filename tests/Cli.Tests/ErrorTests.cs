namespace Storage.Cli.Tests;

/// <summary>Expected failures: one clear line on stderr, non-zero exit, no stack trace.</summary>
public sealed class ErrorTests
{
    [Fact]
    public async Task Wal_dump_of_a_garbage_segment_fails_clearly()
    {
        await using var ctl = new StorageCtl();
        var garbage = Path.Combine(ctl.WorkDir, "000000010000000000000001");
        var bytes = new byte[64 * 1024];
        new Random(1).NextBytes(bytes);
        File.WriteAllBytes(garbage, bytes);

        var result = await ctl.RunAsync("wal", "dump", garbage);
        AssertCleanFailure(result, "invalid magic number");
    }

    [Fact]
    public async Task Wal_dump_of_a_missing_file_fails_clearly()
    {
        await using var ctl = new StorageCtl();
        AssertCleanFailure(await ctl.RunAsync("wal", "dump", "000000010000000000000001"), "no such file");
    }

    [Fact]
    public async Task Commands_without_a_cluster_say_to_run_up_first()
    {
        await using var ctl = new StorageCtl();
        AssertCleanFailure(await ctl.RunAsync("status"), "run 'storagectl up' first");
    }

    private static void AssertCleanFailure(CtlResult result, string expected)
    {
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains(expected, result.Stderr);
        Assert.DoesNotContain("   at ", result.Stderr); // no stack trace
    }
}
