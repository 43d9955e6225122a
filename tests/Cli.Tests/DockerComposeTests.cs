using System.Text.RegularExpressions;

namespace Storage.Cli.Tests;

/// <summary>
/// docker-compose.yml is valid, names every service of the cluster and wires them to the storage
/// controller and the VM containers. Only `config` runs (DockerClusterTests runs the file for real);
/// docker-compose itself comes from scripts/install-deps.sh, so its absence fails.
/// </summary>
public sealed partial class DockerComposeTests
{
    private const string Controller = "http://controller:1234";

    [Fact]
    public async Task Compose_file_is_valid_and_has_the_cluster_services()
    {
        var services = (await ComposeAsync("config", "--services")).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.All(new[] { "s3", "sk1", "sk2", "sk3", "controller", "ps1", "ps2", "proxy", "vm1", "vm2", "vmkeeper", "bootstrap", "prometheus" }, s => Assert.Contains(s, services));
    }

    [Fact]
    public async Task Pageservers_and_the_proxy_use_the_controller_and_bootstrap_creates_main()
    {
        var services = ParseServices(await ComposeAsync("config"));

        var controller = services["controller"];
        Assert.EndsWith("/Storage.StorageController.dll", controller.Command[0]);
        Assert.Equal($"0.0.0.0:{new Uri(Controller).Port}", controller.Option("--listen"));

        // Each pageserver registers with the controller under a name the others can resolve.
        var pageservers = services.Where(s => s.Value.Command[0].EndsWith("/Storage.Pageserver.dll")).ToList();
        Assert.Equal(["ps1", "ps2"], pageservers.Select(p => p.Key).Order());
        foreach (var (name, ps) in pageservers)
        {
            Assert.Equal(Controller, ps.Option("--controller"));
            Assert.Equal($"http://{name}:{ps.Option("--listen")!.Split(':')[1]}", ps.Option("--advertise"));
        }

        var proxy = services["proxy"];
        Assert.Equal(Controller, proxy.Option("--controller"));
        Assert.Equal(pageservers.Select(p => p.Value.Option("--advertise")), proxy.Option("--pageservers")!.Split(','));

        // The pool is the VM containers: each agent listens where the proxy's --external-vms says, on
        // the compose network, and so does its PostgreSQL.
        var vms = services.Where(s => s.Value.Command[0].EndsWith("/Storage.Compute.dll")).ToList();
        Assert.Equal(["vm1", "vm2"], vms.Select(v => v.Key).Order());
        Assert.Equal(vms.Select(v => $"http://{v.Key}:{v.Value.Option("--listen")!.Split(':')[1]}"), proxy.Option("--external-vms")!.Split(','));
        Assert.All(vms, v => Assert.Equal(v.Key, v.Value.Option("--id")));
        Assert.All(vms, v => Assert.Equal("*", v.Value.Option("--pg-listen")));
        // The VM keeper starts a killed one again: it finds them by their label.
        Assert.Equal(["/app/Storage.VmKeeper.dll"], services["vmkeeper"].Command.Take(1));
        var poolLabel = services["vmkeeper"].Option("--pool-label") ?? new VmKeeper.VmKeeperOptions().PoolLabel;
        Assert.All(vms, v => Assert.Contains(poolLabel.Replace("=", ": "), v.Value.Labels));

        // Bootstrap runs once (restarted only on failure) against the controller and the proxy's admin API.
        var bootstrap = services["bootstrap"];
        Assert.Equal(["/app/storagectl.dll", "bootstrap"], bootstrap.Command.Take(2));
        Assert.Equal(Controller, bootstrap.Option("--controller"));
        Assert.Equal($"http://proxy:{proxy.Option("--admin")!.Split(':')[1]}", bootstrap.Option("--admin"));
        Assert.Equal(proxy.Option("--safekeepers"), bootstrap.Option("--safekeepers"));
        Assert.Equal("main", bootstrap.Option("--endpoint"));
        Assert.False(string.IsNullOrEmpty(bootstrap.Option("--password")));
        Assert.Equal("on-failure", bootstrap.Restart);
    }

    /// <summary>One service of the normalized `config` output: its command, restart policy and labels ("KEY: VALUE" lines).</summary>
    private sealed record Service(IReadOnlyList<string> Command, string? Restart, IReadOnlyList<string> Labels)
    {
        public string? Option(string name) =>
            Command.Select((arg, i) => (arg, i)).Where(a => a.arg == name && a.i + 1 < Command.Count).Select(a => Command[a.i + 1]).FirstOrDefault();
    }

    /// <summary>
    /// Reads `services:` of the normalized YAML `config` prints (there is no YAML library here): a
    /// service is a two-space key, its command the `- item` lines under `command:`.
    /// </summary>
    private static Dictionary<string, Service> ParseServices(string config)
    {
        var services = new Dictionary<string, Service>();
        string? name = null;
        List<string> command = [], labels = [];
        string? restart = null;
        bool inServices = false, inCommand = false, inLabels = false;
        void Flush() { if (name is not null) services[name] = new Service(command, restart, labels); }
        foreach (var line in config.Split('\n'))
        {
            if (line.Length > 0 && !char.IsWhiteSpace(line[0])) { inServices = line.TrimEnd() == "services:"; inCommand = false; continue; }
            if (!inServices) continue;
            if (ServiceKey().Match(line) is { Success: true } key)
            {
                Flush();
                (name, command, labels, restart, inCommand, inLabels) = (key.Groups[1].Value, [], [], null, false, false);
                continue;
            }
            var trimmed = line.Trim();
            if (inCommand && trimmed.StartsWith("- ")) { command.Add(Unquote(trimmed[2..])); continue; }
            if (inLabels && line.StartsWith("      ")) { labels.Add(trimmed); continue; }
            inCommand = trimmed == "command:";
            inLabels = trimmed == "labels:";
            if (trimmed.StartsWith("restart:")) restart = Unquote(trimmed["restart:".Length..].Trim());
        }
        Flush();
        return services;
    }

    private static string Unquote(string value) =>
        value.Length >= 2 && (value[0] == '"' || value[0] == '\'') && value[^1] == value[0] ? value[1..^1] : value;

    [GeneratedRegex(@"^  ([A-Za-z0-9_.-]+):\s*$")]
    private static partial Regex ServiceKey();

    /// <summary>Runs docker-compose on the repository's compose file (with the defaults of its variables) and returns its stdout.</summary>
    private static Task<string> ComposeAsync(params string[] args) =>
        ComposeProject.RunAsync(ComposeProject.Compose(), ["-f", Path.Combine(ComposeProject.RepositoryRoot(), "docker-compose.yml"), .. args]);
}
