using Storage.Core;

namespace Storage.ObjectStore;

/// <summary>
/// Reads exactly <c>length</c> bytes of an object from <c>inner</c>, failing with
/// <see cref="ObjectCorruptException"/> if it ends early and, when a CRC-32C is given, if the bytes
/// do not match it. The check runs on the read that reaches the end, which throws instead of
/// returning the last bytes: a caller never sees a complete read of bad content.
/// </summary>
internal sealed class VerifyingReadStream(Stream inner, long length, string key, uint? expectedCrc, IDisposable? owner = null) : Stream
{
    private long _read;
    private uint _crc = Crc32C.Initial;
    private bool _verified;

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => length;
    public override long Position { get => _read; set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        if (AtEnd(buffer.Length)) return 0;
        int n = inner.Read(buffer[..Want(buffer.Length)]);
        Account(buffer[..n]);
        return n;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken ct) =>
        ReadAsync(buffer.AsMemory(offset, count), ct).AsTask();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default)
    {
        if (AtEnd(buffer.Length)) return 0;
        int n = await inner.ReadAsync(buffer[..Want(buffer.Length)], ct);
        Account(buffer.Span[..n]);
        return n;
    }

    private bool AtEnd(int bufferLength)
    {
        if (_read < length) return bufferLength == 0;
        Verify(); // an empty object is checked on its first read
        return true;
    }

    private int Want(int bufferLength) => (int)Math.Min(bufferLength, length - _read);

    private void Account(ReadOnlySpan<byte> data)
    {
        if (data.Length == 0)
            throw new ObjectCorruptException(key, $"content ends after {_read} of {length} bytes");
        _crc = Crc32C.Append(_crc, data);
        _read += data.Length;
        if (_read == length) Verify();
    }

    private void Verify()
    {
        if (_verified || expectedCrc is not uint expected) return;
        uint actual = Crc32C.Finish(_crc);
        if (actual != expected)
            throw new ObjectCorruptException(key, $"CRC-32C mismatch (stored {expected:X8}, content {actual:X8})");
        _verified = true;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            // Disposing only releases the file or connection; the verdict on the content was given
            // by the reads. (The S3 SDK throws here on its own MD5 mismatch, which would otherwise
            // replace our ObjectCorruptException as it propagates through a using.)
            try { inner.Dispose(); } catch (Exception) { }
            try { owner?.Dispose(); } catch (Exception) { }
        }
        base.Dispose(disposing);
    }

    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
