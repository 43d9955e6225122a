namespace Storage.Core.Grpc;

/// <summary>Reads the messages the peer sends on a streaming call.</summary>
public interface IGrpcStreamReader<T> where T : class
{
    /// <summary>The next message, or null once the peer completed the stream (with status OK).</summary>
    ValueTask<T?> ReadAsync(CancellationToken ct = default);

    /// <summary>All remaining messages until the peer completes the stream.</summary>
    IAsyncEnumerable<T> ReadAllAsync(CancellationToken ct = default);
}

/// <summary>Sends messages on a streaming call. Not thread-safe: one write at a time.</summary>
public interface IGrpcStreamWriter<T> where T : class
{
    /// <summary>Serializes the message and flushes it to the network at once (no batching delay).</summary>
    ValueTask WriteAsync(T message, CancellationToken ct = default);
}

/// <summary>The client's side of a duplex call's request stream.</summary>
public interface IGrpcRequestStream<T> : IGrpcStreamWriter<T> where T : class
{
    /// <summary>Tells the server no more requests will follow (half-close).</summary>
    ValueTask CompleteAsync();
}

/// <summary>ReadAllAsync in terms of ReadAsync, shared by the client and server readers.</summary>
internal static class GrpcStreamReaderExtensions
{
    public static async IAsyncEnumerable<T> ReadAllFrom<T>(
        IGrpcStreamReader<T> reader,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
        where T : class
    {
        while (await reader.ReadAsync(ct).ConfigureAwait(false) is { } message)
            yield return message;
    }
}
