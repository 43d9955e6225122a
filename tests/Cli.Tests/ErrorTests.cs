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

    [Theory]
    [InlineData("--lsn", "0/1000000", "--at", "2025-01-31T12:00:00Z", "not both")]
    [InlineData("--lsn", "16B3748", null, null, "is not an LSN")]
    [InlineData("--at", "yesterday", null, null, "is not an ISO-8601 time")]
    public async Task Timeline_branch_with_bad_branch_point_fails_clearly(string option, string value, string? option2, string? value2, string expected)
    {
        await using var ctl = new StorageCtl();
        string[] args = ["timeline", "branch", "--from", new string('a', 32), option, value, .. option2 is null ? [] : new[] { option2, value2! }];
        AssertCleanFailure(await ctl.RunAsync(args), expected);
    }

    [Fact]
    public async Task Up_refuses_to_switch_an_existing_cluster_to_another_object_store()
    {
        await using var ctl = new StorageCtl();
        Directory.CreateDirectory(Path.GetDirectoryName(ctl.StateFile)!);
        // A cluster made with the local folder (no objectStore recorded); nothing runs.
        File.WriteAllText(ctl.StateFile, $$"""
            {"tenantId": "{{new string('a', 32)}}", "timelineId": "{{new string('b', 32)}}",
             "safekeepers": [{"id": 1, "availabilityZone": "az-a", "port": {{ctl.BasePort}}, "httpPort": {{ctl.HttpBasePort}} }],
             "endpoint": {"id": "main", "roleName": "app", "password": "secret"} }
            """);
        AssertCleanFailure(await ctl.RunAsync("up", "--s3-endpoint", "http://127.0.0.1:1", "--bucket", "other"), "delete the cluster folder first");
    }

    [Fact]
    public async Task A_cluster_json_of_an_older_storagectl_is_read_and_can_be_stopped()
    {
        await using var ctl = new StorageCtl();
        Directory.CreateDirectory(Path.GetDirectoryName(ctl.StateFile)!);
        // The shape an older storagectl wrote: its own VM in "computes", the endpoint naming it; nothing runs.
        File.WriteAllText(ctl.StateFile, $$"""
            {"tenantId": "{{new string('a', 32)}}", "timelineId": "{{new string('b', 32)}}",
             "safekeepers": [{"id": 1, "availabilityZone": "az-a", "port": {{ctl.BasePort}}, "httpPort": {{ctl.HttpBasePort}} }],
             "pageservers": [{"name": "ps1", "port": {{ctl.BasePort + 5}}, "httpPort": {{ctl.HttpBasePort + 5}} }],
             "computes": [{"name": "vm1", "port": {{ctl.BasePort + 20}}, "httpPort": {{ctl.BasePort + 30}}, "postgresPort": {{ctl.BasePort + 40}}, "pid": null}],
             "endpoint": {"id": "main", "roleName": "app", "password": "secret", "vm": "vm1"} }
            """);
        var status = await ctl.RunAsync("status");
        Assert.True(status.ExitCode == 0, status.ToString());
        Assert.Contains("storagectl up", status.Stdout); // says how to migrate
        var down = await ctl.RunAsync("down");
        Assert.True(down.ExitCode == 0, down.ToString());
        AssertCleanFailure(await ctl.RunAsync("kill", "vm"), "name the endpoint, like vm:main");
    }

    private static void AssertCleanFailure(CtlResult result, string expected)
    {
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains(expected, result.Stderr);
        Assert.DoesNotContain("   at ", result.Stderr); // no stack trace
    }
}
