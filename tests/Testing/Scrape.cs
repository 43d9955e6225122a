using System.Globalization;

namespace Storage.Testing;

/// <summary>One series' value from a service's Prometheus <c>/metrics</c> text, for tests.</summary>
public static class Scrape
{
    /// <summary>The value of <paramref name="series"/> (name and labels exactly as exposed), or null when it is absent.</summary>
    public static double? Value(string metricsText, string series)
    {
        var line = metricsText.Split('\n').FirstOrDefault(l => l.StartsWith(series + " ", StringComparison.Ordinal));
        return line is null ? null : double.Parse(line[(series.Length + 1)..], CultureInfo.InvariantCulture);
    }

    /// <summary>Fetches <paramref name="metricsUri"/> and reads <paramref name="series"/> from it.</summary>
    public static async Task<double?> ValueAsync(Uri metricsUri, string series)
    {
        using var http = new HttpClient();
        return Value(await http.GetStringAsync(metricsUri), series);
    }

    /// <summary>The labels of a per-timeline series, in the order the services expose them.</summary>
    public static string TimelineSeries(string metric, string tenantId, string timelineId) =>
        $"{metric}{{tenant_id=\"{tenantId}\",timeline_id=\"{timelineId}\"}}";
}
