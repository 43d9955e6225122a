using Storage.Core;

namespace Storage.ObjectStore;

/// <summary>
/// Cuts a stream into parts of a fixed size, one buffer reused, and knows whether the part it
/// returns is the last (it reads one byte ahead, carried into the next part). Keeps the running
/// CRC-32C of everything returned.
/// </summary>
internal sealed class PartReader(Stream source, int partSize)
{
    private readonly byte[] _buffer = new byte[partSize];
    private readonly byte[] _lookahead = new byte[1];
    private bool _hasCarry;
    private uint _crc = Crc32C.Initial;

    public long Length { get; private set; }
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
        while (filled < _buffer.Length && (n = await source.ReadAsync(_buffer.AsMemory(filled), ct)) > 0) filled += n;
        _hasCarry = filled == _buffer.Length && await source.ReadAsync(_lookahead, ct) == 1;
        _crc = Crc32C.Append(_crc, _buffer.AsSpan(0, filled));
        Length += filled;
        return (_buffer.AsMemory(0, filled), !_hasCarry);
    }
}
