using System.Collections.Concurrent;
using System.Globalization;
using System.Text;

namespace Storage.Core.Observability;

/// <summary>
/// A minimal Prometheus registry: counters and gauges, optionally with labels, rendered in the
/// text exposition format (version 0.0.4) for a /metrics endpoint.
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

    public Cell Counter(string name, string help, params (string Name, string Value)[] labels) => Get(name, help, "counter", labels);
    public Cell Gauge(string name, string help, params (string Name, string Value)[] labels) => Get(name, help, "gauge", labels);

    /// <summary>Runs before every render, to refresh gauges from live state.</summary>
    public void OnCollect(Action collector) { lock (_collectors) _collectors.Add(collector); }

    private Cell Get(string name, string help, string type, (string Name, string Value)[] labels)
    {
        var family = _families.GetOrAdd(name, _ => new Family(name, help, type));
        if (family.Type != type) throw new InvalidOperationException($"metric {name} is a {family.Type}, not a {type}");
        return family.Cells.GetOrAdd(LabelText(labels), _ => new Cell());
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
