using Microsoft.Extensions.Logging.Abstractions;
using Storage.Core.Observability;
using Storage.Safekeeper.Storage;

namespace Storage.Safekeeper.Tests.Storage;

/// <summary>A safekeeper's timelines loaded from its data directory, exactly as a restarted process loads them.</summary>
internal static class RestartedNode
{
    public static TimelineRegistry Load(string dataDir, DiskSync? sync = null)
    {
        var registry = new TimelineRegistry(dataDir, new NodeIdentity(1, "az-a"), NullLoggerFactory.Instance, new SafekeeperMetrics(), sync);
        registry.LoadAll();
        return registry;
    }

    /// <summary>WAL [from, to) as the timeline serves it.</summary>
    public static byte[] ReadWal(Timeline timeline, Core.Lsn from, Core.Lsn to)
    {
        var bytes = new byte[to - from];
        int done = 0;
        while (done < bytes.Length)
        {
            int n = timeline.ReadWal(from + (ulong)done, bytes.AsSpan(done));
            if (n <= 0) throw new InvalidOperationException($"the timeline served WAL only up to {from + (ulong)done}, not {to}");
            done += n;
        }
        return bytes;
    }
}
