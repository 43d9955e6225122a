namespace Storage.Safekeeper.Bench;

/// <summary>Latency summary of one measurement, in microseconds.</summary>
public sealed record LatencyStats(int Count, double P50Us, double P99Us, double MeanUs, double MaxUs)
{
    public static LatencyStats From(IReadOnlyList<double> samplesUs)
    {
        var sorted = samplesUs.Order().ToArray();
        return new LatencyStats(sorted.Length, Percentile(sorted, 0.50), Percentile(sorted, 0.99), sorted.Average(), sorted[^1]);
    }

    /// <summary>Nearest-rank percentile: the smallest sample with at least p of the samples at or below it.</summary>
    private static double Percentile(double[] sorted, double p) =>
        sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1)];
}

/// <summary>Bytes moved in a time span.</summary>
public sealed record ThroughputStats(long Bytes, double Seconds)
{
    public double MBps => Bytes / (1024.0 * 1024.0) / Seconds;
}
