namespace Storage.Core.Storage;

/// <summary>
/// Passes writes through to an inner stream while counting them and computing their CRC-32C, so
/// a file or a network stream gets its checksum without being read twice.
/// </summary>
public sealed class Crc32CWriteStream(Stream inner, bool leaveOpen = true) : Stream
{
    private uint _crc = Core.Crc32C.Initial;

    public long BytesWritten { get; private set; }
    public uint Crc32C => Core.Crc32C.Finish(_crc);

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        _crc = Core.Crc32C.Append(_crc, buffer);
        BytesWritten += buffer.Length;
        inner.Write(buffer);
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken ct = default)
    {
        _crc = Core.Crc32C.Append(_crc, buffer.Span);
        BytesWritten += buffer.Length;
        await inner.WriteAsync(buffer, ct);
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken ct) =>
        WriteAsync(buffer.AsMemory(offset, count), ct).AsTask();

    public override void Flush() => inner.Flush();
    public override Task FlushAsync(CancellationToken ct) => inner.FlushAsync(ct);

    /// <summary>Size and CRC-32C of a whole file.</summary>
    public static async Task<(long Bytes, uint Crc)> ChecksumFileAsync(string path, CancellationToken ct = default)
    {
        await using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
        var buffer = new byte[1 << 20];
        uint crc = Core.Crc32C.Initial;
        long total = 0;
        int n;
        while ((n = await file.ReadAsync(buffer, ct)) > 0)
        {
            crc = Core.Crc32C.Append(crc, buffer.AsSpan(0, n));
            total += n;
        }
        return (total, Core.Crc32C.Finish(crc));
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing && !leaveOpen) inner.Dispose();
        base.Dispose(disposing);
    }

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => BytesWritten; set => throw new NotSupportedException(); }
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}
