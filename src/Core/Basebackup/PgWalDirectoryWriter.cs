using Microsoft.Win32.SafeHandles;

namespace Storage.Core.Basebackup;

/// <summary>
/// Writes WAL bytes at consecutive LSNs into the segment files of a data directory's pg_wal
/// (timeline 1, 16 MiB segments), creating zero-filled segments as needed, and finally cuts the
/// WAL at an LSN: the rest of that segment is zeroed and later segments are removed, so
/// PostgreSQL's recovery ends exactly there.
/// </summary>
public sealed class PgWalDirectoryWriter : Stream
{
    private const uint TimelineId = 1;
    private readonly string _walDirectory;
    private readonly WalGeometry _geometry;
    private SafeFileHandle? _segment;
    private ulong _segmentNumber = ulong.MaxValue;

    public PgWalDirectoryWriter(string dataDirectory, Lsn start, WalGeometry? geometry = null)
    {
        _walDirectory = System.IO.Path.Combine(dataDirectory, "pg_wal");
        _geometry = geometry ?? WalGeometry.Default;
        Directory.CreateDirectory(_walDirectory);
        Next = start;
    }

    /// <summary>The LSN the next written byte lands at.</summary>
    public Lsn Next { get; private set; }

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        while (!buffer.IsEmpty)
        {
            var handle = SegmentFor(Next);
            int offset = _geometry.SegmentOffset(Next);
            int n = Math.Min(buffer.Length, _geometry.SegmentSize - offset);
            RandomAccess.Write(handle, buffer[..n], offset);
            buffer = buffer[n..];
            Next += (ulong)n;
        }
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken ct = default)
    {
        Write(buffer.Span);
        return ValueTask.CompletedTask;
    }

    /// <summary>Zeroes WAL from <see cref="Next"/> to the end of its segment and deletes every later segment.</summary>
    public void CutHere()
    {
        var handle = SegmentFor(Next);
        var zeros = new byte[1 << 20];
        for (long offset = _geometry.SegmentOffset(Next); offset < _geometry.SegmentSize; offset += zeros.Length)
            RandomAccess.Write(handle, zeros.AsSpan(0, (int)Math.Min(zeros.Length, _geometry.SegmentSize - offset)), offset);
        var last = _geometry.SegmentNumber(Next);
        foreach (var file in Directory.EnumerateFiles(_walDirectory))
            if (_geometry.TryParseSegmentFileName(System.IO.Path.GetFileName(file), out _, out var number) && number > last)
                File.Delete(file);
    }

    private SafeFileHandle SegmentFor(Lsn lsn)
    {
        var number = _geometry.SegmentNumber(lsn);
        if (number == _segmentNumber && _segment != null) return _segment;
        _segment?.Dispose();
        var path = System.IO.Path.Combine(_walDirectory, _geometry.SegmentFileName(TimelineId, number));
        bool fresh = !File.Exists(path);
        _segment = File.OpenHandle(path, FileMode.OpenOrCreate, FileAccess.ReadWrite);
        // PostgreSQL only reads full-size segments; a new one is the size of a segment, all zeros.
        if (fresh || RandomAccess.GetLength(_segment) != _geometry.SegmentSize) RandomAccess.SetLength(_segment, _geometry.SegmentSize);
        _segmentNumber = number;
        return _segment;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) _segment?.Dispose();
        base.Dispose(disposing);
    }

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}
