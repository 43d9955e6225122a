using System.Formats.Tar;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using Npgsql;
using Storage.Core.Api;
using Storage.Core.Basebackup;
using Storage.Core.Observability;
using Storage.Core.Postgres;

namespace Storage.Compute;

/// <summary>
/// Runs once while a new VM is idle: goes through the code an attach runs (a gRPC call, unpacking a
/// tar into a data directory and handing it to postgres, starting a program as postgres, opening an
/// Npgsql connection), none of it tied to an endpoint, so the JIT's first-call cost and cold
/// binaries are paid here and not during a failover. Failures only cost the warm-up.
/// </summary>
internal static class AgentWarmUp
{
    public static async Task RunAsync(Uri self, AgentOptions options, string connectionString, ILogger log)
    {
        var clock = new PhaseClock();
        try
        {
            try { await ComputeClient.HeartbeatAsync(self, TimeSpan.FromSeconds(30)); }
            // A VM holds no token its own API accepts (only the control plane's are): the refusal
            // still went through the channel, HTTP/2 and the server's token check, which is the point.
            catch (RpcException e) when (e.StatusCode == StatusCode.Unauthenticated) { }
            clock.Mark("grpc");
            await UnpackAsync(Path.Combine(options.WorkDirectory, "warm-up"));
            clock.Mark("tar");
            await ProcessRunner.RunAsync(OsUser.StartInfoAsPostgres(options.Binaries.Postgres, ["--version"]), TimeSpan.FromSeconds(30));
            clock.Mark("postgres --version");
            try
            {
                // Nothing listens yet: the open fails, after compiling Npgsql's connection set-up.
                await using var connection = new NpgsqlConnection(connectionString + ";Timeout=2");
                await connection.OpenAsync();
            }
            catch (Exception e) when (e is NpgsqlException or InvalidOperationException or TimeoutException) { }
            clock.Mark("npgsql");
            log.LogInformation("warm-up done: {Phases}", clock);
        }
        catch (Exception e)
        {
            log.LogWarning("warm-up failed (only the first attach is slower): {Error}", e.Message);
        }
    }

    /// <summary>A tiny basebackup-like tar, unpacked and handed to postgres as an attach does, then deleted.</summary>
    private static async Task UnpackAsync(string directory)
    {
        if (Directory.Exists(directory)) Directory.Delete(directory, recursive: true);
        using var tar = new MemoryStream();
        await using (var writer = new TarWriter(tar, TarEntryFormat.Pax, leaveOpen: true))
        {
            await writer.WriteEntryAsync(new PaxTarEntry(TarEntryType.Directory, "pg_wal/"));
            await writer.WriteEntryAsync(new PaxTarEntry(TarEntryType.RegularFile, "pg_wal/000000010000000000000001") { DataStream = new MemoryStream(new byte[8192]) });
        }
        tar.Position = 0;
        Directory.CreateDirectory(directory);
        try
        {
            await TarFile.ExtractToDirectoryAsync(tar, directory, overwriteFiles: false);
            DataDirectoryAssembler.PadWalSegments(directory); // sparse: no 16 MiB written
            await DataDirectoryAssembler.HandToPostgresAsync(directory, CancellationToken.None);
        }
        finally { Directory.Delete(directory, recursive: true); }
    }
}
