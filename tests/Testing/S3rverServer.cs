using System.Diagnostics;
using System.Net.Sockets;
using Storage.Core.Processes;

namespace Storage.Testing;

/// <summary>
/// A real S3-protocol server for tests: npm's s3rver (installed into the repository's .tools/ by
/// scripts/install-deps.sh) on a free loopback port, storing its buckets in its own temp directory
/// (object "k" of bucket "b" is the file b/k._S3rver_object there) and logging each request to
/// <see cref="ReadLog"/>. s3rver lacks some of S3 (listing and aborting multipart uploads). Killed by its PID; it can be
/// killed and started again on the same port and directory to test retries.
/// </summary>
public sealed class S3rverServer : IAsyncDisposable
{
    /// <summary>The credentials s3rver accepts.</summary>
    public const string AccessKey = "S3RVER", SecretKey = "S3RVER";

    private Process? _process;

    private S3rverServer(string directory, int port)
    {
        DataDirectory = directory;
        Port = port;
    }

    public string DataDirectory { get; }
    public int Port { get; }
    public string ServiceUrl => $"http://127.0.0.1:{Port}";
    public bool IsRunning => _process is { HasExited: false };
    private string LogFile => DataDirectory + ".log";

    /// <summary>Starts a server with a new temp directory on a free port.</summary>
    public static async Task<S3rverServer> StartAsync()
    {
        var server = Create();
        await server.RestartAsync();
        return server;
    }

    /// <summary>A server with its directory and port chosen, not started (see <see cref="RestartAsync"/>).</summary>
    public static S3rverServer Create() =>
        new(Directory.CreateTempSubdirectory("s3rver-").FullName, ServiceProcess.FreePort());

    /// <summary>The object's file in the server's directory (tests corrupt it on purpose).</summary>
    public string ObjectFile(string bucket, string key) => Path.Combine(DataDirectory, bucket, key + "._S3rver_object");

    /// <summary>Starts the server (again) and waits until it answers HTTP.</summary>
    public async Task RestartAsync()
    {
        if (IsRunning) throw new InvalidOperationException("s3rver is already running");
        _process?.Dispose();
        // s3rver's list continuation tokens use DES, which OpenSSL 3 keeps in its legacy provider.
        var command = string.Join(' ', new[] { Node(), "--openssl-legacy-provider", Script(), "--directory", DataDirectory, "--port", Port.ToString(),
            "--address", "127.0.0.1" }.Select(Quote));
        var psi = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add($"exec {command} >>{Quote(LogFile)} 2>&1 </dev/null"); // exec: the PID is node's
        _process = Process.Start(psi) ?? throw new InvalidOperationException("could not start s3rver");
        try
        {
            await WaitUntilAnsweringAsync(TimeSpan.FromSeconds(30));
        }
        catch
        {
            await KillAsync();
            throw;
        }
    }

    /// <summary>SIGKILL, by PID, and wait until it is gone.</summary>
    public async Task KillAsync()
    {
        if (_process is null) return;
        await ServiceProcess.KillPidAsync(_process.Id);
        _process.WaitForExit(5000); // reap our child
    }

    public async ValueTask DisposeAsync()
    {
        await KillAsync();
        _process?.Dispose();
        try { Directory.Delete(DataDirectory, recursive: true); File.Delete(LogFile); }
        catch (IOException) { } // best effort: a temp directory
    }

    private async Task WaitUntilAnsweringAsync(TimeSpan timeout)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (_process!.HasExited)
                throw new InvalidOperationException($"s3rver exited with {_process.ExitCode} before answering; see {LogFile}:\n{ReadLog()}");
            try
            {
                using var _ = await http.GetAsync(ServiceUrl); // any HTTP answer (even 403) means it serves
                return;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException or SocketException) { }
            await Task.Delay(50);
        }
        throw new TimeoutException($"s3rver did not answer on {ServiceUrl} within {timeout.TotalSeconds:0} s; see {LogFile}");
    }

    /// <summary>The server's log: one line per request it served.</summary>
    public string ReadLog() => File.Exists(LogFile) ? File.ReadAllText(LogFile) : "";

    /// <summary>
    /// s3rver's entry script: $S3RVER_SCRIPT, else .tools/node_modules/s3rver/bin/s3rver.js in the
    /// repository this test runs from (found by walking up to Storage.sln).
    /// </summary>
    public static string Script()
    {
        if (Environment.GetEnvironmentVariable("S3RVER_SCRIPT") is { Length: > 0 } configured) return configured;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (!File.Exists(Path.Combine(dir.FullName, "Storage.sln"))) continue;
            var script = Path.Combine(dir.FullName, ".tools", "node_modules", "s3rver", "bin", "s3rver.js");
            return File.Exists(script) ? script
                : throw new FileNotFoundException($"s3rver is not installed in {dir.FullName}/.tools: run `bash scripts/install-deps.sh`", script);
        }
        throw new FileNotFoundException($"no Storage.sln above {AppContext.BaseDirectory}; set S3RVER_SCRIPT to s3rver's bin/s3rver.js");
    }

    private static string Node() =>
        new[] { "/usr/bin/node", "/usr/local/bin/node", "/usr/bin/nodejs" }.FirstOrDefault(File.Exists)
        ?? throw new FileNotFoundException("Node.js is not installed: run `bash scripts/install-deps.sh`");

    private static string Quote(string s) => "'" + s.Replace("'", "'\\''") + "'";
}
