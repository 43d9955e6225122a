using System.Diagnostics;

namespace Storage.Cli.Chaos;

/// <summary>
/// What the client knows about an operation: Ok (acknowledged: COMMIT returned success, or a read
/// returned rows), Failed (it certainly did not take effect: an error before COMMIT was sent, or an
/// ERROR answer to it), Unknown (the connection broke or timed out while COMMIT was in flight).
/// </summary>
public enum OpOutcome { Ok, Failed, Unknown }

/// <summary>
/// One operation as the client saw it, with times on the run's clock.
/// Key and Value by workload: log append (Key = id); bank transfer (Value = amount); bank read
/// (Key = accounts seen, Value = total seen); register write and read (Value = the value written or read).
/// </summary>
public sealed record Operation(string Workload, OpKind Kind, long Key, long Value, TimeSpan Start, TimeSpan End, OpOutcome Outcome, string? Error = null)
{
    /// <summary>Writes change data; their acknowledgements measure availability.</summary>
    public bool IsWrite => Kind is OpKind.Append or OpKind.Transfer or OpKind.Write;
}

public enum OpKind { Append, Transfer, Write, Read }

/// <summary>The run's clock: time since the run started, for operations and faults alike.</summary>
public sealed class RunClock
{
    private readonly Stopwatch _watch = Stopwatch.StartNew();
    public TimeSpan Now => _watch.Elapsed;
}

/// <summary>Every operation of a run, recorded by the workloads as they complete (thread-safe).</summary>
public sealed class History(RunClock clock)
{
    private readonly List<Operation> _operations = new();

    public RunClock Clock { get; } = clock;

    public void Add(Operation op)
    {
        lock (_operations) _operations.Add(op);
    }

    public IReadOnlyList<Operation> Snapshot()
    {
        lock (_operations) return _operations.ToList();
    }
}
