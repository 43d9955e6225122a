using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using Storage.Core.Postgres;
using Storage.Core.Processes;

namespace Storage.Proxy.Bench;

/// <summary>
/// pgbouncer 1.x in session mode in front of the compute's PostgreSQL: the classic connection
/// proxy, measured in the same run as ours (the anchors' bar, re-measured side by side). It logs
/// in to PostgreSQL as the endpoint role; clients may give any user (auth_type any).
/// </summary>
public sealed class PgbouncerProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly string _directory;

    public int Port { get; }
    public int Pid => _process.Id;

    private PgbouncerProcess(Process process, string directory, int port) => (_process, _directory, Port) = (process, directory, port);

    /// <summary>Where pgbouncer is installed (Debian's package), or null: the bench then skips it.</summary>
    public static string? Executable => new[] { "/usr/sbin/pgbouncer", "/usr/bin/pgbouncer" }.FirstOrDefault(File.Exists);

    public static async Task<PgbouncerProcess> StartAsync(string executable, int serverPort, string role, string password)
    {
        var directory = Directory.CreateTempSubdirectory("pgbouncer-bench-").FullName;
        await OsUser.GiveToPostgresAsync(directory); // pgbouncer refuses root: it runs as postgres and writes its log here
        int port = ServiceProcess.FreePort();
        var ini = Path.Combine(directory, "pgbouncer.ini");
        File.WriteAllText(ini, string.Join('\n',
            "[databases]",
            $"postgres = host=127.0.0.1 port={serverPort} dbname=postgres user={role} password={password}",
            "[pgbouncer]",
            "listen_addr = 127.0.0.1",
            $"listen_port = {port.ToString(CultureInfo.InvariantCulture)}",
            "unix_socket_dir =",
            "auth_type = any",
            "pool_mode = session",
            "default_pool_size = 20",
            "max_client_conn = 200",
            $"logfile = {Path.Combine(directory, "pgbouncer.log")}",
            "") + "\n");
        await OsUser.GiveToPostgresAsync(ini);
        var psi = OsUser.StartInfoAsPostgres(executable, [ini]);
        psi.RedirectStandardOutput = psi.RedirectStandardError = true;
        var process = Process.Start(psi) ?? throw new InvalidOperationException("could not start pgbouncer");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var pgbouncer = new PgbouncerProcess(process, directory, port);
        for (var deadline = DateTime.UtcNow.AddSeconds(30); ; await Task.Delay(100))
        {
            if (process.HasExited) throw new InvalidOperationException($"pgbouncer exited with {process.ExitCode}: {pgbouncer.LogTail()}");
            try
            {
                using var probe = new TcpClient();
                await probe.ConnectAsync("127.0.0.1", port);
                return pgbouncer;
            }
            catch (SocketException) when (DateTime.UtcNow < deadline) { }
        }
    }

    public string LogTail()
    {
        var log = Path.Combine(_directory, "pgbouncer.log");
        return File.Exists(log) ? string.Join('\n', File.ReadLines(log).TakeLast(20)) : "(no log)";
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
        try { Directory.Delete(_directory, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
