using System.Diagnostics;

namespace Storage.Cli.Tests;

/// <summary>
/// docker-compose.yml is valid and names every service of the cluster. Only `config` runs (no Docker
/// engine needed); docker-compose itself comes from scripts/install-deps.sh, so its absence fails.
/// </summary>
public sealed class DockerComposeTests
{
    [Fact]
    public async Task Compose_file_is_valid_and_has_the_cluster_services()
    {
        var compose = FindOnPath("docker-compose")
            ?? throw new InvalidOperationException("docker-compose is not installed: run scripts/install-deps.sh");
        var repo = RepositoryRoot();
        var psi = new ProcessStartInfo(compose) { WorkingDirectory = repo, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { "-f", Path.Combine(repo, "docker-compose.yml"), "config", "--services" }) psi.ArgumentList.Add(arg);
        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(timeout.Token);
        Assert.True(process.ExitCode == 0, $"docker-compose config failed: {await stderr}");
        var services = (await stdout).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.All(new[] { "sk1", "sk2", "sk3", "ps1", "proxy" }, s => Assert.Contains(s, services));
    }

    private static string? FindOnPath(string program) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, program)).FirstOrDefault(File.Exists);

    /// <summary>The folder holding Storage.sln, above the test's output folder.</summary>
    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Storage.sln"))) return dir.FullName;
        throw new InvalidOperationException($"no Storage.sln above {AppContext.BaseDirectory}");
    }
}
