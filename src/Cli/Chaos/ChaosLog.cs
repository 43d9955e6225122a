namespace Storage.Cli.Chaos;

/// <summary>
/// The run's timeline as it happens: each line stamped with the time since the run started, written
/// at once (stdout, or stderr when the report goes to stdout as JSON) and kept for the report.
/// </summary>
public sealed class ChaosLog(TextWriter output, RunClock clock)
{
    private readonly List<string> _lines = new();

    public RunClock Clock { get; } = clock;

    public void Write(string message)
    {
        var line = $"[{Stamp(Clock.Now)}] {message}";
        lock (_lines)
        {
            _lines.Add(line);
            output.WriteLine(line);
            output.Flush();
        }
    }

    public IReadOnlyList<string> Lines
    {
        get { lock (_lines) return _lines.ToList(); }
    }

    /// <summary>"+01:02.3": minutes, seconds and tenths since the start.</summary>
    public static string Stamp(TimeSpan at) => $"+{(int)at.TotalMinutes:00}:{at.Seconds:00}.{at.Milliseconds / 100}";
}
