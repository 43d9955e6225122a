using System.Diagnostics;
using System.Text.Json;
using Storage.Core.Processes;

namespace Storage.Cli.Tests;

/// <summary>
/// The repository's docker-compose.yml run as one compose project on the real Docker Engine, under a
/// name of its own (storagetest&lt;pid&gt;) and with host ports of its own, so it meets no other
/// project. Dispose removes its containers, networks and volumes. Containers are addressed by id
/// (`ps -q SERVICE`), which holds for compose v1 and v2 alike.
/// </summary>
public sealed class ComposeProject : IAsyncDisposable
{
    private const string Prefix = "storagetest";
    private readonly Dictionary<string, string> _environment;
    private string? _adminToken;

    private ComposeProject(string name, Dictionary<string, string> environment)
    {
        Name = name;
        _environment = environment;
    }

    public string Name { get; }
    public int PostgresPort => int.Parse(_environment["STORAGE_PG_PORT"]);
    public int PrometheusPort => int.Parse(_environment["STORAGE_PROMETHEUS_PORT"]);
    public int AdminPort => int.Parse(_environment["STORAGE_ADMIN_PORT"]);

    /// <summary>A project named after this process, on free host ports; the leftovers of test runs that died are removed first.</summary>
    public static async Task<ComposeProject> CreateAsync()
    {
        await RemoveLeftoversAsync();
        return new ComposeProject(Prefix + Environment.ProcessId, new()
        {
            ["STORAGE_PG_PORT"] = ServiceProcess.FreePort().ToString(),
            ["STORAGE_PROMETHEUS_PORT"] = ServiceProcess.FreePort().ToString(),
            ["STORAGE_ADMIN_PORT"] = ServiceProcess.FreePort().ToString(),
        });
    }

    /// <summary>docker-compose with this project's name and environment; fails the test when it fails.</summary>
    public Task<string> ComposeAsync(params string[] args) => RunAsync(Compose(), ["-f", ComposeFile, "-p", Name, .. args], _environment);

    /// <summary>The container of <paramref name="service"/> (it must exist).</summary>
    public async Task<string> ContainerAsync(string service) =>
        (await ComposeAsync("ps", "-q", service)).Trim() is { Length: > 0 } id ? id : throw new InvalidOperationException($"{Name} has no container for {service}");

    public async Task DockerAsync(params string[] args) => await RunAsync(Docker(), args);

    public async Task<string> InspectAsync(string service, string format) => (await RunAsync(Docker(), ["inspect", "-f", format, await ContainerAsync(service)])).Trim();

    /// <summary>The compose network the services share.</summary>
    public async Task<string> NetworkAsync() => (await InspectAsync("sk1", "{{range $name, $_ := .NetworkSettings.Networks}}{{$name}} {{end}}")).Split(' ')[0];

    /// <summary>The operator's admin token (volume auth, made by the keys service), read as the README tells a user to.</summary>
    public async Task<string> AdminTokenAsync() =>
        _adminToken ??= (await ComposeAsync("exec", "-T", "proxy", "cat", "/auth/admin-operator.token")).Trim();

    /// <summary>The control plane's view (admin API GET /status): which VM serves which endpoint, and each VM's state.</summary>
    public async Task<JsonElement> ControlPlaneStatusAsync()
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", await AdminTokenAsync());
        return JsonDocument.Parse(await http.GetStringAsync($"http://127.0.0.1:{AdminPort}/status")).RootElement.Clone();
    }

    /// <summary>The last lines of every service's log, for a failure message.</summary>
    public async Task<string> LogsAsync()
    {
        try { return await ComposeAsync("logs", "--no-color", "--tail", "40"); }
        catch (Exception e) { return $"(no logs: {e.Message})"; }
    }

    public async ValueTask DisposeAsync() => await DownAsync(Name);

    private static Task DownAsync(string project) =>
        RunAsync(Compose(), ["-f", ComposeFile, "-p", project, "down", "-v", "--remove-orphans", "--timeout", "5"]);

    /// <summary>Projects of earlier test processes that no longer run (killed before their cleanup).</summary>
    private static async Task RemoveLeftoversAsync()
    {
        var projects = (await RunAsync(Docker(), ["ps", "-a", "--format", "{{.Label \"com.docker.compose.project\"}}"]))
            .Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Distinct();
        foreach (var project in projects)
            if (project.StartsWith(Prefix) && int.TryParse(project[Prefix.Length..], out int pid) && !ServiceProcess.IsAlive(pid))
                await DownAsync(project);
    }

    private static string ComposeFile => Path.Combine(RepositoryRoot(), "docker-compose.yml");

    public static string Compose() => FindOnPath("docker-compose") ?? throw new InvalidOperationException("docker-compose is not installed: run scripts/install-deps.sh");

    private static string Docker() => FindOnPath("docker") ?? throw new InvalidOperationException("docker is not installed: run scripts/install-deps.sh");

    /// <summary>Runs a program to its end (at most 5 minutes) and returns its stdout; a non-zero exit fails with its stderr.</summary>
    public static async Task<string> RunAsync(string program, IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment = null)
    {
        var psi = new ProcessStartInfo(program) { WorkingDirectory = RepositoryRoot(), RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args) psi.ArgumentList.Add(arg);
        foreach (var (name, value) in environment ?? new Dictionary<string, string>()) psi.Environment[name] = value;
        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        try { await process.WaitForExitAsync(timeout.Token); }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{Path.GetFileName(program)} {string.Join(' ', psi.ArgumentList)} did not finish within 5 minutes");
        }
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"{Path.GetFileName(program)} {string.Join(' ', psi.ArgumentList)} exited with {process.ExitCode}: {await stderr}");
        return await stdout;
    }

    private static string? FindOnPath(string program) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, program)).FirstOrDefault(File.Exists);

    /// <summary>The folder holding Storage.sln, above the test's output folder.</summary>
    public static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Storage.sln"))) return dir.FullName;
        throw new InvalidOperationException($"no Storage.sln above {AppContext.BaseDirectory}");
    }
}
