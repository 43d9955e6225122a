using Storage.Core;

namespace Storage.ObjectStore;

/// <summary>
/// Cuts a stream into parts of a fixed size, one buffer reused, and knows whether the part it
/// returns is the last (it reads one byte ahead, carried into the next part). Keeps the running
/// CRC-32C of everything returned. The buffer grows to a part only as content arrives, so a small
/// object costs a small buffer.
/// </summary>
internal sealed class PartReader(Stream source, int partSize)
{
    private byte[] _buffer = new byte[Math.Min(partSize, 64 << 10)];
    private readonly byte[] _lookahead = new byte[1];
    private bool _hasCarry;
    private uint _crc = Crc32C.Initial;

    public uint Crc => Crc32C.Finish(_crc);

    /// <summary>The next part (valid until the next call) and whether the source ended with it.</summary>
    public async Task<(ReadOnlyMemory<byte> Part, bool IsLast)> NextAsync(CancellationToken ct)
    {
        int filled = 0;
        if (_hasCarry)
        {
            _buffer[0] = _lookahead[0];
            filled = 1;
        }
        int n;
        while (true)
        {
            if (filled == _buffer.Length)
            {
                if (_buffer.Length == partSize) break;
                Array.Resize(ref _buffer, (int)Math.Min(2L * _buffer.Length, partSize));
            }
            if ((n = await source.ReadAsync(_buffer.AsMemory(filled), ct)) == 0) break;
            filled += n;
        }
        _hasCarry = filled == partSize && await source.ReadAsync(_lookahead, ct) == 1;
        _crc = Crc32C.Append(_crc, _buffer.AsSpan(0, filled));
        return (_buffer.AsMemory(0, filled), !_hasCarry);
    }
}
