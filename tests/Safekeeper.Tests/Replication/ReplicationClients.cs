using System.Buffers;
using System.Diagnostics;
using System.Globalization;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Text;
using Storage.Core;
using Storage.Core.Postgres;
using Storage.Core.Postgres.Wire;
using Storage.Testing;

namespace Storage.Safekeeper.Tests.Replication;

/// <summary>Clients of a safekeeper's replication port for tests: a bare protocol client, PostgreSQL's tools, the metrics.</summary>
internal static class ReplicationClients
{
    public static readonly TimeSpan Bounded = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Connects with <paramref name="parameters"/> and answers a password request with
    /// <paramref name="password"/>; the server's error fields, or null once the session is ready.
    /// </summary>
    public static async Task<IReadOnlyDictionary<char, string>?> LoginAsync(int port, IReadOnlyList<(string, string)> parameters, string password)
    {
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        using var timeout = new CancellationTokenSource(Bounded);
        await socket.ConnectAsync("127.0.0.1", port, timeout.Token);
        await using var stream = new NetworkStream(socket);
        var reader = PipeReader.Create(stream);
        var writer = PipeWriter.Create(stream);
        PgFraming.WriteStartup(writer, parameters);
        await writer.FlushAsync(timeout.Token);
        return await ReadUntilReadyAsync(reader, timeout.Token, async () =>
        {
            var bytes = Encoding.UTF8.GetBytes(password + "\0");
            var body = PgFraming.WriteHeader(writer, (byte)'p', bytes.Length);
            bytes.CopyTo(body);
            writer.Advance(5 + bytes.Length);
            await writer.FlushAsync(timeout.Token);
        });
    }

    /// <summary>Sends raw bytes as the first thing on a connection; the error the server answers with.</summary>
    public static async Task<IReadOnlyDictionary<char, string>?> SendRawAsync(int port, byte[] bytes)
    {
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        using var timeout = new CancellationTokenSource(Bounded);
        await socket.ConnectAsync("127.0.0.1", port, timeout.Token);
        await using var stream = new NetworkStream(socket);
        await stream.WriteAsync(bytes, timeout.Token);
        return await ReadUntilReadyAsync(PipeReader.Create(stream), timeout.Token, () => Task.CompletedTask);
    }

    private static async Task<IReadOnlyDictionary<char, string>?> ReadUntilReadyAsync(PipeReader reader, CancellationToken ct, Func<Task> onPasswordRequest)
    {
        while (await PgFraming.ReadAsync(reader, ct) is { } next)
        {
            var (message, consumed) = next;
            var body = message.Body.ToArray();
            reader.AdvanceTo(consumed);
            switch (message.Type)
            {
                case (byte)'E': return ErrorResponse.ParseFields(body);
                case (byte)'Z': return null;
                case (byte)'R' when body[3] == 3: await onPasswordRequest(); break;
            }
        }
        throw new EndOfStreamException("the safekeeper closed the connection without an error");
    }

    public static string ConnInfo(SafekeeperCluster cluster, int i, string applicationName) =>
        $"host=127.0.0.1 port={cluster.PgPort(i)} user=standby application_name={applicationName} options='{cluster.ReplicationOptions}'";

    /// <summary>psql on a replication connection (PGPASSWORD = <paramref name="token"/> when given, never a prompt).</summary>
    public static Task<ProcessResult> PsqlAsync(string connInfo, string command, string? token)
    {
        var psi = new ProcessStartInfo(PostgresBinaries.Locate().Tool("psql")) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "-w", "-X", "-A", "-t", "-d", connInfo + " replication=true", "-c", command }) psi.ArgumentList.Add(a);
        psi.Environment.Remove("PGPASSWORD");
        if (token is not null) psi.Environment["PGPASSWORD"] = token;
        return ProcessRunner.RunAsync(psi, Bounded);
    }

    /// <summary>A metric's value on safekeeper <paramref name="i"/> (null when the series is absent).</summary>
    public static Task<double?> MetricAsync(SafekeeperCluster cluster, int i, string series) => Scrape.ValueAsync(cluster.MetricsUri(i), series);

    public static string StandbySeries(SafekeeperCluster cluster, string metric, string applicationName) =>
        $"{metric}{{tenant_id=\"{cluster.TenantId}\",timeline_id=\"{cluster.TimelineId}\",application_name=\"{applicationName}\"}}";

    /// <summary>Waits (bounded) until safekeeper <paramref name="i"/> knows WAL up to <paramref name="lsn"/> is committed.</summary>
    public static Task SafekeeperCommittedAsync(SafekeeperCluster cluster, int i, Lsn lsn) =>
        Eventually.ReachAsync(async () => new Lsn((await cluster.StatusAsync(i)).CommitLsn), c => c >= lsn, Bounded, () => $"safekeeper {i + 1} commit below {lsn}\n{cluster.Logs()}");
}

/// <summary>A pg_receivewal process streaming into a directory (--synchronous: it reports what it flushed); stopped with SIGINT (as an operator would), killed by its PID on dispose.</summary>
internal sealed class PgReceiveWal : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    public string Directory { get; }

    public PgReceiveWal(string connInfo, string directory, string token)
    {
        Directory = directory;
        System.IO.Directory.CreateDirectory(directory);
        var psi = new ProcessStartInfo(PostgresBinaries.Locate().Tool("pg_receivewal")) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "-d", connInfo, "-D", directory, "--no-loop", "--synchronous", "-w", "-s", "1", "-v" }) psi.ArgumentList.Add(a);
        psi.Environment["PGPASSWORD"] = token;
        _process = Process.Start(psi) ?? throw new InvalidOperationException("pg_receivewal did not start");
        _process.OutputDataReceived += (_, e) => { lock (_output) _output.AppendLine(e.Data); };
        _process.ErrorDataReceived += (_, e) => { lock (_output) _output.AppendLine(e.Data); };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public bool HasExited => _process.HasExited;
    public string Output { get { lock (_output) return _output.ToString(); } }

    /// <summary>SIGINT: pg_receivewal ends the copy (CopyDone) and exits; its exit code.</summary>
    public async Task<int> StopAsync()
    {
        OsUser.Signal(_process.Id, OsUser.SigInt);
        await _process.WaitForExitAsync().WaitAsync(ReplicationClients.Bounded);
        return _process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            OsUser.Signal(_process.Id, OsUser.SigKill);
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
    }
}
