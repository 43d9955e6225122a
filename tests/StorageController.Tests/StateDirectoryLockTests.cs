using Storage.Core.Auth;
using Storage.Core.Api;
using Storage.Core.Postgres;
using Storage.Core.Processes;
using Storage.Testing;

namespace Storage.StorageController.Tests;

/// <summary>One storage controller per state directory, with real controller processes.</summary>
public sealed class StateDirectoryLockTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("sc-lock-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public async Task A_second_controller_on_the_same_state_refuses_at_once_and_the_first_keeps_serving()
    {
        await using var first = await ControllerNode.StartAsync(_root);
        await ControllerClient.RegisterPageserverAsync(first.Uri, "ps-lock", new Uri("http://127.0.0.1:9"), []);
        var state = Path.Combine(first.DataDirectory, "state.bin");
        var before = await File.ReadAllBytesAsync(state);

        // Other ports: only the state directory is shared.
        var (exitCode, output) = await RunToExitAsync(ControllerCommand.Arguments(ServiceProcess.FreePort(), ServiceProcess.FreePort(), first.DataDirectory,
            auth: TestAuth.Secrets.ServiceAuth(Scope.Controller, "controller")));

        Assert.NotEqual(0, exitCode);
        Assert.Contains($"another storage controller holds {first.DataDirectory}", output);
        Assert.Equal(before, await File.ReadAllBytesAsync(state));
        var status = await first.StatusAsync();
        Assert.Contains(status.Nodes, n => n.NodeId == "ps-lock");

        // The lock goes with its holder, also on SIGKILL: a new controller takes the state over.
        await first.KillAsync();
        await first.StartAsync();
        Assert.Contains((await first.StatusAsync()).Nodes, n => n.NodeId == "ps-lock");
    }

    /// <summary>Runs a controller process and waits (bounded) for it to exit; its stdout and stderr.</summary>
    private static async Task<(int ExitCode, string Output)> RunToExitAsync(IEnumerable<string> arguments)
    {
        var result = await ProcessRunner.RunAsync("dotnet", [ControllerCommand.Assembly, .. arguments], TimeSpan.FromSeconds(60));
        return (result.ExitCode, result.StandardOutput + result.StandardError);
    }
}
