using System.CommandLine;
using Storage.Core.Wal;

namespace Storage.Cli.Commands;

/// <summary>`storagectl wal dump FILE...`: one pg_waldump-like line per decoded record.</summary>
public static class WalCommand
{
    public static Command Create()
    {
        var files = new Argument<string[]>("files") { Description = "WAL segment files (named like 000000010000000000000001, optionally .partial)", Arity = ArgumentArity.OneOrMore };
        var dump = new Command("dump", "print the records of WAL segment files") { files };
        dump.SetAction(result => CliRunner.RunAsync(() => Task.FromResult(Dump(result.GetValue(files)!))));
        return new Command("wal", "inspect WAL") { dump };
    }

    private static int Dump(string[] files)
    {
        foreach (var file in files)
            if (!File.Exists(file)) throw new CliError($"no such file: {file}");
        int records = 0;
        foreach (var line in WalSegmentFiles.Dump(files))
        {
            Console.WriteLine(line);
            records++;
        }
        // A zeroed or foreign file decodes as "end of WAL" at once: say so rather than print nothing.
        if (records == 0) throw new CliError($"no WAL records could be decoded from {string.Join(", ", files)}");
        return 0;
    }
}
