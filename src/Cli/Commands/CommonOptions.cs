using System.CommandLine;

namespace Storage.Cli.Commands;

/// <summary>Options shared by every command.</summary>
public static class CommonOptions
{
    /// <summary>Where the local cluster keeps its state; recursive so it works after any subcommand.</summary>
    public static readonly Option<string> Dir = new("--dir")
    {
        Description = "folder holding the local cluster's state, data and logs",
        DefaultValueFactory = _ => ".storage",
        Recursive = true,
    };

    public static ClusterDirectory ClusterDir(ParseResult result) => new(result.GetValue(Dir)!);
}
