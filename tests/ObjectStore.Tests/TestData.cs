using Storage.Core;

namespace Storage.ObjectStore.Tests;

/// <summary>Deterministic content: byte i of seed s is a function of (s, i), so it can be regenerated to compare.</summary>
internal static class TestData
{
    public static byte At(int seed, long i)
    {
        ulong x = (ulong)i * 0x9E3779B97F4A7C15UL ^ (ulong)seed * 0xC2B2AE3D27D4EB4FUL;
        x ^= x >> 29;
        return (byte)(x * 0xBF58476D1CE4E5B9UL >> 56);
    }

    public static byte[] Bytes(long length, int seed = 1)
    {
        var bytes = new byte[length];
        for (long i = 0; i < length; i++) bytes[i] = At(seed, i);
        return bytes;
    }

    public static uint Crc(long length, int seed = 1)
    {
        uint crc = Crc32C.Initial;
        var chunk = new byte[1 << 16];
        for (long done = 0; done < length; done += chunk.Length)
        {
            int n = (int)Math.Min(chunk.Length, length - done);
            for (int i = 0; i < n; i++) chunk[i] = At(seed, done + i);
            crc = Crc32C.Append(crc, chunk.AsSpan(0, n));
        }
        return Crc32C.Finish(crc);
    }

    public static async Task<byte[]> ReadAllAsync(Stream stream)
    {
        await using (stream)
        {
            var copy = new MemoryStream();
            await stream.CopyToAsync(copy);
            return copy.ToArray();
        }
    }

    /// <summary>Reads a stream to its end in small pieces, returning its length and CRC-32C (nothing kept).</summary>
    public static async Task<(long Length, uint Crc)> DigestAsync(Stream stream, Func<long, Task>? onRead = null)
    {
        await using (stream)
        {
            var buffer = new byte[64 << 10];
            uint crc = Crc32C.Initial;
            long length = 0;
            int n;
            while (true)
            {
                if (onRead is not null) await onRead(length);
                if ((n = await stream.ReadAsync(buffer)) == 0) break;
                crc = Crc32C.Append(crc, buffer.AsSpan(0, n));
                length += n;
            }
            return (length, Crc32C.Finish(crc));
        }
    }
}

/// <summary>
/// A non-seekable stream of <see cref="TestData"/> content, generated as it is read (never held in
/// memory); <c>onRead</c> runs before each read with the position, e.g. to kill a server mid-put
/// or to throw like a failing source.
/// </summary>
internal sealed class GeneratedStream(long length, int seed = 1, Func<long, Task>? onRead = null) : Stream
{
    private long _position;

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException(); // like a network source
    public override long Position { get => _position; set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer, offset, count).GetAwaiter().GetResult();

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken ct) =>
        ReadAsync(buffer.AsMemory(offset, count), ct).AsTask();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default)
    {
        if (onRead is not null) await onRead(_position);
        int n = (int)Math.Min(buffer.Length, length - _position);
        var span = buffer.Span;
        for (int i = 0; i < n; i++) span[i] = TestData.At(seed, _position + i);
        _position += n;
        return n;
    }

    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
