using System.CommandLine;
using Storage.Core.Auth;

namespace Storage.Cli.Commands;

/// <summary>
/// `storagectl keys`: makes a cluster's key pair and its services' tokens in a directory (0600 files),
/// for clusters storagectl does not start itself (docker compose runs it once into a shared volume).
/// Idempotent: what exists is kept, so the services' tokens stay valid.
/// </summary>
public static class KeysCommand
{
    public static Command Create()
    {
        var dir = new Option<string>("--dir") { Description = "where the key pair and tokens go", Required = true };
        var services = new Option<string[]>("--token")
        {
            Description = "a token to make, SCOPE:SUBJECT (e.g. pageserver:ps1, controller:controller, control-plane:control-plane, admin:bootstrap); repeatable",
            AllowMultipleArgumentsPerToken = true,
        };
        var command = new Command("keys", "make a cluster's signing key pair and its services' tokens (0600 files), keeping what exists") { dir, services };
        command.SetAction((result, ct) => CliRunner.RunAsync(() =>
        {
            var secrets = ClusterSecrets.CreateOrOpen(result.GetValue(dir)!);
            foreach (var spec in result.GetValue(services) ?? [])
            {
                var parts = spec.Split(':', 2);
                if (parts.Length != 2 || ScopeNames.Parse(parts[0]) is not { } scope || scope == Scope.Compute)
                    throw new CliError($"--token {spec}: expected SCOPE:SUBJECT with SCOPE one of admin, control-plane, controller, pageserver");
                Console.Error.WriteLine($"token of {spec}: {secrets.TokenFile(scope, parts[1])}");
            }
            Console.Error.WriteLine($"public key: {secrets.PublicKeyFile}");
            return Task.FromResult(0);
        }));
        return command;
    }
}
