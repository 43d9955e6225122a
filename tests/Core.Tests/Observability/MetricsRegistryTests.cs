using Storage.Core.Observability;

namespace Storage.Core.Tests.Observability;

public sealed class MetricsRegistryTests
{
    [Fact]
    public void Histogram_renders_cumulative_buckets_with_inf_sum_and_count_per_label_set()
    {
        var registry = new MetricsRegistry();
        var plain = registry.Histogram("op_seconds", "how long", [0.25, 0.5, 1]);
        foreach (var v in new[] { 0.125, 0.25, 0.375, 0.75, 7 }) plain.Observe(v); // binary fractions: an exact sum
        registry.Histogram("op_seconds", "how long", [0.25, 0.5, 1], ("node", "a")).Observe(0.625);

        var text = registry.Render();

        Assert.Equal("""
            # HELP op_seconds how long
            # TYPE op_seconds histogram
            op_seconds_bucket{le="0.25"} 2
            op_seconds_bucket{le="0.5"} 3
            op_seconds_bucket{le="1"} 4
            op_seconds_bucket{le="+Inf"} 5
            op_seconds_sum 8.5
            op_seconds_count 5
            op_seconds_bucket{node="a",le="0.25"} 0
            op_seconds_bucket{node="a",le="0.5"} 0
            op_seconds_bucket{node="a",le="1"} 1
            op_seconds_bucket{node="a",le="+Inf"} 1
            op_seconds_sum{node="a"} 0.625
            op_seconds_count{node="a"} 1

            """.ReplaceLineEndings("\n"), text);
    }

    [Fact]
    public void Histogram_bounds_must_ascend_and_a_name_keeps_its_type()
    {
        var registry = new MetricsRegistry();
        Assert.Throws<ArgumentException>(() => registry.Histogram("h", "h", [1, 1]));
        Assert.Throws<ArgumentException>(() => registry.Histogram("h", "h", []));
        registry.Counter("c", "c");
        Assert.Throws<InvalidOperationException>(() => registry.Histogram("c", "c", [1]));
    }
}
