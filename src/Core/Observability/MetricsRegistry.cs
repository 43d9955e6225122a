using System.Collections.Concurrent;
using System.Globalization;
using System.Text;

namespace Storage.Core.Observability;

/// <summary>
/// A minimal Prometheus registry: counters, gauges and histograms, optionally with labels, rendered
/// in the text exposition format (version 0.0.4) for a /metrics endpoint.
/// </summary>
public sealed class MetricsRegistry
{
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    private readonly ConcurrentDictionary<string, Family> _families = new();
    private readonly List<Action> _collectors = new();

    private sealed class Family(string name, string help, string type)
    {
        public readonly string Name = name, Help = help, Type = type;
        public readonly ConcurrentDictionary<string, Cell> Cells = new();
        public readonly ConcurrentDictionary<string, HistogramCell> Histograms = new();
    }

    /// <summary>One time series; values are doubles updated atomically.</summary>
    public sealed class Cell
    {
        private long _bits;
        public double Value => BitConverter.Int64BitsToDouble(Interlocked.Read(ref _bits));
        public void Set(double value) => Interlocked.Exchange(ref _bits, BitConverter.DoubleToInt64Bits(value));
        public void Add(double delta)
        {
            long seen, next;
            do
            {
                seen = Interlocked.Read(ref _bits);
                next = BitConverter.DoubleToInt64Bits(BitConverter.Int64BitsToDouble(seen) + delta);
            } while (Interlocked.CompareExchange(ref _bits, next, seen) != seen);
        }
    }

    /// <summary>
    /// Observations counted in buckets with the given upper bounds (ascending; +Inf is added), plus
    /// their sum and count: what Prometheus computes quantiles from (histogram_quantile).
    /// </summary>
    public sealed class HistogramCell
    {
        private readonly double[] _bounds;
        private readonly Cell[] _buckets; // per bucket, not cumulative; the last one is +Inf
        private readonly Cell _sum = new(), _count = new();

        internal HistogramCell(double[] bounds)
        {
            if (bounds.Length == 0 || bounds.Zip(bounds.Skip(1)).Any(p => p.First >= p.Second))
                throw new ArgumentException("histogram bounds must be ascending and not empty");
            _bounds = bounds;
            _buckets = [.. Enumerable.Range(0, bounds.Length + 1).Select(_ => new Cell())];
        }

        public void Observe(double value)
        {
            int i = Array.FindIndex(_bounds, bound => value <= bound);
            _buckets[i < 0 ? _bounds.Length : i].Add(1);
            _sum.Add(value);
            _count.Add(1);
        }

        internal void Render(StringBuilder sb, string name, string labels)
        {
            double cumulative = 0;
            for (int i = 0; i <= _bounds.Length; i++)
            {
                cumulative += _buckets[i].Value;
                var le = i < _bounds.Length ? _bounds[i].ToString("R", CultureInfo.InvariantCulture) : "+Inf";
                var withLe = labels.Length == 0 ? $"{{le=\"{le}\"}}" : $"{labels[..^1]},le=\"{le}\"}}";
                sb.Append(name).Append("_bucket").Append(withLe).Append(' ').Append(cumulative.ToString("R", CultureInfo.InvariantCulture)).Append('\n');
            }
            sb.Append(name).Append("_sum").Append(labels).Append(' ').Append(_sum.Value.ToString("R", CultureInfo.InvariantCulture)).Append('\n');
            sb.Append(name).Append("_count").Append(labels).Append(' ').Append(_count.Value.ToString("R", CultureInfo.InvariantCulture)).Append('\n');
        }
    }

    public Cell Counter(string name, string help, params (string Name, string Value)[] labels) => Get(name, help, "counter", labels);
    public Cell Gauge(string name, string help, params (string Name, string Value)[] labels) => Get(name, help, "gauge", labels);

    public HistogramCell Histogram(string name, string help, double[] bounds, params (string Name, string Value)[] labels) =>
        FamilyOf(name, help, "histogram").Histograms.GetOrAdd(LabelText(labels), _ => new HistogramCell(bounds));

    /// <summary>Runs before every render, to refresh gauges from live state.</summary>
    public void OnCollect(Action collector) { lock (_collectors) _collectors.Add(collector); }

    private Cell Get(string name, string help, string type, (string Name, string Value)[] labels) =>
        FamilyOf(name, help, type).Cells.GetOrAdd(LabelText(labels), _ => new Cell());

    private Family FamilyOf(string name, string help, string type)
    {
        var family = _families.GetOrAdd(name, _ => new Family(name, help, type));
        if (family.Type != type) throw new InvalidOperationException($"metric {name} is a {family.Type}, not a {type}");
        return family;
    }

    public string Render()
    {
        lock (_collectors) foreach (var c in _collectors) c();
        var sb = new StringBuilder();
        foreach (var family in _families.Values.OrderBy(f => f.Name, StringComparer.Ordinal))
        {
            sb.Append("# HELP ").Append(family.Name).Append(' ').Append(family.Help).Append('\n');
            sb.Append("# TYPE ").Append(family.Name).Append(' ').Append(family.Type).Append('\n');
            foreach (var (labels, cell) in family.Cells.OrderBy(c => c.Key, StringComparer.Ordinal))
                sb.Append(family.Name).Append(labels).Append(' ').Append(cell.Value.ToString("R", CultureInfo.InvariantCulture)).Append('\n');
            foreach (var (labels, histogram) in family.Histograms.OrderBy(c => c.Key, StringComparer.Ordinal))
                histogram.Render(sb, family.Name, labels);
        }
        return sb.ToString();
    }

    private static string LabelText((string Name, string Value)[] labels)
    {
        if (labels.Length == 0) return "";
        return "{" + string.Join(",", labels.Select(l => $"{l.Name}=\"{Escape(l.Value)}\"")) + "}";
    }

    private static string Escape(string value) => value.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("\n", "\\n");
}
