namespace Storage.Testing;

/// <summary>Bounded polling for tests: a probe until its value is what the test waits for.</summary>
public static class Eventually
{
    /// <summary>
    /// Probes every 200 ms until <paramref name="done"/>; a probe that fails because a process is
    /// down or not yet serving (RPC, HTTP or I/O errors) counts as "not yet". Times out with the last
    /// value or error and <paramref name="describe"/> (usually the cluster's logs).
    /// </summary>
    public static async Task<T> ReachAsync<T>(Func<Task<T>> probe, Func<T, bool> done, TimeSpan timeout, Func<string> describe)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            string last;
            try
            {
                var value = await probe();
                if (done(value)) return value;
                last = $"last: {value}";
            }
            catch (Exception e) when (e is Grpc.Core.RpcException or HttpRequestException or IOException)
            {
                last = e.Message;
            }
            if (clock.Elapsed > timeout) throw new TimeoutException($"not reached within {timeout.TotalSeconds:0} s; {last}\n{describe()}");
            await Task.Delay(200);
        }
    }

    /// <summary>
    /// Deletes a directory tree, retrying for up to 10 s while it changes under the delete: the
    /// children of a SIGKILLed postmaster (checkpointer, walwriter) may still write until they notice.
    /// </summary>
    public static void DeleteDirectory(string path)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            try
            {
                if (Directory.Exists(path)) Directory.Delete(path, recursive: true);
                return;
            }
            catch (IOException) when (clock.Elapsed < TimeSpan.FromSeconds(10)) { Thread.Sleep(100); }
        }
    }
}

/// <summary>
/// Inserts batches of rows into <c>acked(id int primary key, pad text)</c> in a loop until stopped,
/// counting only batches whose COMMIT returned: what a fault test checks survives.
/// </summary>
public sealed class AckedBatchWriter
{
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private long _acked;

    private AckedBatchWriter(string connectionString, int batchSize) => _loop = Task.Run(async () =>
    {
        for (int batch = 0; !_stop.IsCancellationRequested; batch++)
        {
            await Sql.ExecAsync(connectionString,
                $"insert into acked select g, repeat('y', 500) from generate_series({batch * batchSize + 1}, {batch * batchSize + batchSize}) g");
            Interlocked.Exchange(ref _acked, (batch + 1L) * batchSize);
        }
    });

    /// <summary>Creates the table and starts writing.</summary>
    public static async Task<AckedBatchWriter> StartAsync(string connectionString, int batchSize)
    {
        await Sql.ExecAsync(connectionString, "create table acked (id int primary key, pad text)");
        return new AckedBatchWriter(connectionString, batchSize);
    }

    /// <summary>Rows whose insert was acknowledged so far.</summary>
    public long Acked => Interlocked.Read(ref _acked);

    /// <summary>Stops after the batch in flight; a failed batch fails the caller.</summary>
    public async Task<long> StopAsync()
    {
        await _stop.CancelAsync();
        await _loop;
        return Acked;
    }
}
