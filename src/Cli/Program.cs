using System.CommandLine;
using Spectre.Console;
using Storage.Cli.Commands;

// storagectl: runs and inspects a local cluster whose state lives in .storage/ (or --dir).
// Piped output has no terminal width; keep tables readable for logs and scripts.
if (Console.IsOutputRedirected)
{
    AnsiConsole.Profile.Width = 160;
    AnsiConsole.Profile.Capabilities.Ansi = false; // no colour codes in files and pipes
}

var root = new RootCommand("storagectl: manage a local Neon-style storage cluster (safekeepers, pageserver, proxy with compute VMs)")
{
    CommonOptions.Dir,
    UpCommand.Create(),
    ProcessCommands.Down(),
    ProcessCommands.Safekeeper(),
    ProcessCommands.Kill(),
    ProcessCommands.Start(),
    StatusCommand.Create(),
    WalCommand.Create(),
    TimelineCommand.Create(),
    TimelineCommand.BranchAlias(),
    EndpointCommand.Create(),
    BootstrapCommand.Create(),
    KeysCommand.Create(),
    ChaosCommand.Create(),
};
return await root.Parse(args).InvokeAsync();
