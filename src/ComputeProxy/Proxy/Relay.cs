using System.Buffers;
using System.IO.Pipelines;
using Prometheus;

namespace Storage.ComputeProxy.Proxy;

/// <summary>
/// Copies one direction of a session. The startup phase read through a <see cref="PipeReader"/>,
/// which may hold bytes already received; those go first. From then on each read from the source
/// lands in one pooled buffer that is written straight to the other side: one read and one write
/// per message, with no pipe segments to manage in between (on two cores the proxy's CPU per
/// relayed message is taken from PostgreSQL and its clients).
/// </summary>
public static class Relay
{
    /// <summary>Larger than any message of a typical OLTP exchange, small enough to stay in cache.</summary>
    private const int BufferSize = 16 * 1024;

    /// <param name="buffered">The reader the startup phase used on <paramref name="from"/>; never read from again.</param>
    public static async Task CopyAsync(PipeReader buffered, Stream from, Stream to, Counter.Child bytes, BackendKeySniffer? sniffer, CancellationToken ct)
    {
        // The startup readers leave what they have not consumed unexamined, so TryRead returns it.
        if (buffered.TryRead(out var result))
        {
            var held = result.Buffer;
            if (sniffer is { Done: false }) sniffer.Observe(held);
            foreach (var segment in held) await to.WriteAsync(segment, ct);
            if (!held.IsEmpty) bytes.Inc(held.Length);
            buffered.AdvanceTo(held.End);
            if (result.IsCompleted) return;
        }
        var buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
        try
        {
            while (true)
            {
                int n = await from.ReadAsync(buffer, ct);
                if (n == 0) return;
                var chunk = buffer.AsMemory(0, n);
                if (sniffer is { Done: false }) sniffer.Observe(new ReadOnlySequence<byte>(chunk));
                await to.WriteAsync(chunk, ct);
                bytes.Inc(n);
            }
        }
        finally { ArrayPool<byte>.Shared.Return(buffer); }
    }
}
