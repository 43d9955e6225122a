using System.IO.Pipelines;
using Storage.Core.Observability;

namespace Storage.ComputeProxy.Proxy;

/// <summary>
/// Copies one direction of a session: each buffer segment the reader holds is written straight to
/// the other side's stream (the only copy is socket -> pooled pipe buffer -> socket).
/// </summary>
public static class Relay
{
    public static async Task CopyAsync(PipeReader from, Stream to, MetricsRegistry.Cell bytes, BackendKeySniffer? sniffer, CancellationToken ct)
    {
        while (true)
        {
            var result = await from.ReadAsync(ct);
            var buffer = result.Buffer;
            if (sniffer is { Done: false }) sniffer.Observe(buffer);
            foreach (var segment in buffer)
                await to.WriteAsync(segment, ct);
            if (!buffer.IsEmpty) bytes.Add(buffer.Length);
            from.AdvanceTo(buffer.End);
            if (result.IsCompleted || result.IsCanceled) return;
        }
    }
}
