using Npgsql;
using Storage.Core.Api;
using Storage.Testing;

namespace Storage.Cli.Tests;

/// <summary>
/// `storagectl bootstrap` (what docker compose runs) against a real loopback cluster from `up`,
/// addressed only by its controller, admin API and safekeeper URLs, as in compose.
/// </summary>
public sealed class BootstrapTests
{
    [Fact]
    public async Task Bootstrap_reports_an_existing_endpoint_and_creates_a_missing_one_on_a_new_timeline()
    {
        await using var ctl = new StorageCtl();
        var up = await ctl.UpAsync();
        Assert.True(up.ExitCode == 0, up.ToString());
        var upUri = new Uri(ConnectionString(up));
        var controller = new Uri($"http://127.0.0.1:{ctl.BasePort + 7}");
        // The cluster `up` made has its own key: the test calls as storagectl does, with its admin token.
        var token = Core.Auth.SecretFile.Read(ctl.AdminTokenFile);
        var secrets = Directory.GetFiles(Path.Combine(ctl.WorkDir, ".storage", "auth")).Where(f => !f.EndsWith("public_key.pem", StringComparison.Ordinal)).ToList();
        Assert.Contains(secrets, f => f.EndsWith("auth_private_key.pem", StringComparison.Ordinal));
        if (!OperatingSystem.IsWindows())
            foreach (var secret in secrets) Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(secret)); // keys and tokens: 0600
        var timelines = (await ControllerClient.StatusAsync(controller, token: token)).Placements.Count;

        // `up` made endpoint main: bootstrap only reports it. The admin API never shows a password, so
        // the URI has none unless --password gives it (compose always does).
        var again = await BootstrapAsync(ctl, "main");
        Assert.True(again.ExitCode == 0, again.ToString());
        Assert.Contains("endpoint main already exists", again.Stderr);
        Assert.Contains("give --password", again.Stderr);
        var bare = new Uri(ConnectionString(again));
        Assert.Equal(("app", upUri.Port), (bare.UserInfo, bare.Port));
        var withPassword = await BootstrapAsync(ctl, "main", "--password", Uri.UnescapeDataString(upUri.UserInfo.Split(':')[1]));
        Assert.True(withPassword.ExitCode == 0, withPassword.ToString());
        var mainUri = new Uri(ConnectionString(withPassword));
        Assert.Equal((upUri.UserInfo, upUri.Port), (mainUri.UserInfo, mainUri.Port));
        Assert.Equal(timelines, (await ControllerClient.StatusAsync(controller, token: token)).Placements.Count);

        // A missing endpoint gets a new timeline, placed by the controller, and serves SQL through the proxy.
        var other = await BootstrapAsync(ctl, "other", "--password", "bootstrap-pw");
        Assert.True(other.ExitCode == 0, other.ToString());
        Assert.Contains("created endpoint other", other.Stderr);
        Assert.Equal(timelines + 1, (await ControllerClient.StatusAsync(controller, token: token)).Placements.Count);
        var otherUri = new Uri(ConnectionString(other));
        Assert.Equal("app:bootstrap-pw", otherUri.UserInfo);
        Assert.Contains("options=endpoint%3Dother", otherUri.Query);

        var otherCs = ToNpgsql(otherUri, "other");
        await Sql.ExecAsync(otherCs, "create table bootstrapped (id int); insert into bootstrapped values (1), (2)");
        Assert.Equal(2L, await Sql.ScalarAsync(otherCs, "select count(*) from bootstrapped"));
        // Its own timeline: main does not see the table.
        Assert.Equal(0L, await Sql.ScalarAsync(ToNpgsql(mainUri, "main"), "select count(*) from pg_class where relname = 'bootstrapped'"));
    }

    [Fact]
    public async Task Bootstrap_gives_up_after_its_wait_when_nothing_answers()
    {
        await using var ctl = new StorageCtl(); // no cluster: its ports are free
        var result = await ctl.RunAsync("bootstrap", "--controller", $"http://127.0.0.1:{ctl.BasePort + 7}", "--admin", $"http://127.0.0.1:{ctl.BasePort + 18}",
            "--safekeepers", $"http://127.0.0.1:{ctl.BasePort}", "--wait-seconds", "4", "--token-file", WrittenToken(ctl));
        Assert.Equal(1, result.ExitCode);
        Assert.Contains("not ready yet", result.Stderr);
        Assert.Contains("error: the control plane at", result.Stderr);
        Assert.DoesNotContain("postgresql://", result.Stdout);
    }

    /// <summary>A token file of some key (nothing answers to check it).</summary>
    private static string WrittenToken(StorageCtl ctl)
    {
        var path = Path.Combine(ctl.WorkDir, "admin.token");
        Core.Auth.SecretFile.Write(path, TestAuth.AdminToken);
        return path;
    }

    /// <summary>Bootstrap with only URLs, like the compose service (the proxy address for the printed string).</summary>
    private static Task<CtlResult> BootstrapAsync(StorageCtl ctl, string endpoint, params string[] extra) => ctl.RunAsync(
    [
        "bootstrap", "--controller", $"http://127.0.0.1:{ctl.BasePort + 7}", "--admin", $"http://127.0.0.1:{ctl.BasePort + 18}",
        "--safekeepers", string.Join(',', Enumerable.Range(0, 3).Select(i => $"http://127.0.0.1:{ctl.BasePort + i}")),
        "--proxy-address", $"127.0.0.1:{ctl.BasePort + 19}", "--endpoint", endpoint, "--wait-seconds", "30",
        "--token-file", ctl.AdminTokenFile, .. extra,
    ]);

    private static string ConnectionString(CtlResult result) =>
        result.Stdout.Split('\n').Select(l => l.Trim()).Single(l => l.StartsWith("postgresql://"));

    /// <summary>Npgsql settings from a printed URI; the endpoint goes in the startup options, as the URI's options= says.</summary>
    private static string ToNpgsql(Uri uri, string endpoint)
    {
        var user = uri.UserInfo.Split(':');
        return new NpgsqlConnectionStringBuilder
        {
            Host = uri.Host, Port = uri.Port, Username = Uri.UnescapeDataString(user[0]), Password = Uri.UnescapeDataString(user[1]),
            Database = uri.AbsolutePath.TrimStart('/'), Options = $"endpoint={endpoint}", Pooling = false,
            Timeout = 120, CommandTimeout = 60, // the first connection wakes the endpoint: a VM attaches it
        }.ConnectionString;
    }
}
