using Grpc.Core;

namespace Storage.Testing;

/// <summary>Reading a gRPC response stream one message at a time in tests.</summary>
public static class StreamReading
{
    /// <summary>The next message, or null when the stream ended; a failed call throws its RpcException.</summary>
    public static async Task<T?> ReadNextAsync<T>(this IAsyncStreamReader<T> reader, CancellationToken ct = default) where T : class =>
        await reader.MoveNext(ct) ? reader.Current : null;
}
