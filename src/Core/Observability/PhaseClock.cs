using System.Diagnostics;
using System.Globalization;

namespace Storage.Core.Observability;

/// <summary>
/// Times the consecutive phases of one operation (e.g. an attach): <see cref="Mark"/> ends the
/// phase running since the previous mark. The summary goes into one log line, so where the time of
/// a slow failover went can be read from the logs without a profiler.
/// </summary>
public sealed class PhaseClock
{
    private readonly long _started = Stopwatch.GetTimestamp();
    private long _last;
    private readonly List<(string Phase, TimeSpan Took)> _phases = [];

    public PhaseClock() => _last = _started;

    public IReadOnlyList<(string Phase, TimeSpan Took)> Phases => _phases;
    public TimeSpan Elapsed => Stopwatch.GetElapsedTime(_started);

    /// <summary>Ends the phase <paramref name="phase"/> (running since the last mark) and returns how long it took.</summary>
    public TimeSpan Mark(string phase)
    {
        long now = Stopwatch.GetTimestamp();
        var took = Stopwatch.GetElapsedTime(_last, now);
        _last = now;
        lock (_phases) _phases.Add((phase, took));
        return took;
    }

    /// <summary>"election 120 ms, basebackup 800 ms, ... (total 1400 ms)".</summary>
    public override string ToString()
    {
        lock (_phases)
            return string.Join(", ", _phases.Select(p => $"{p.Phase} {Millis(p.Took)} ms")) + $" (total {Millis(Elapsed)} ms)";
    }

    private static string Millis(TimeSpan t) => t.TotalMilliseconds.ToString("F0", CultureInfo.InvariantCulture);
}
