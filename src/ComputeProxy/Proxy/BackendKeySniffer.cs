using System.Buffers;
using System.Buffers.Binary;

namespace Storage.ComputeProxy.Proxy;

/// <summary>
/// Watches the bytes PostgreSQL sends a client during session start-up and picks out the
/// BackendKeyData ('K') message. It never holds bytes back: the relay forwards every chunk as it
/// comes, and the sniffer keeps only a partial header or key across chunks. It stops looking at
/// the first ReadyForQuery ('Z'), after which the relay is a plain copy.
/// </summary>
public sealed class BackendKeySniffer
{
    private const int MaxKeyLength = 4 + 256;
    private readonly byte[] _header = new byte[5];
    private int _headerFill;
    private long _bodyLeft;
    private byte[]? _key;
    private int _keyFill;

    /// <summary>Called with the key (process id + secret) when the BackendKeyData message is complete.</summary>
    public Action<byte[]>? KeyFound { get; init; }

    public bool Done { get; private set; }

    public void Observe(ReadOnlySequence<byte> chunk)
    {
        foreach (var segment in chunk)
        {
            var span = segment.Span;
            while (!span.IsEmpty && !Done) span = Step(span);
            if (Done) return;
        }
    }

    private ReadOnlySpan<byte> Step(ReadOnlySpan<byte> span)
    {
        if (_bodyLeft == 0 && _headerFill < 5)
        {
            int n = Math.Min(5 - _headerFill, span.Length);
            span[..n].CopyTo(_header.AsSpan(_headerFill));
            _headerFill += n;
            if (_headerFill == 5) StartBody();
            return span[n..];
        }
        int take = (int)Math.Min(_bodyLeft, span.Length);
        if (_key != null)
        {
            span[..take].CopyTo(_key.AsSpan(_keyFill));
            _keyFill += take;
        }
        _bodyLeft -= take;
        if (_bodyLeft == 0) EndBody();
        return span[take..];
    }

    private void StartBody()
    {
        byte type = _header[0];
        int length = BinaryPrimitives.ReadInt32BigEndian(_header.AsSpan(1));
        // Not a message stream we understand: stop sniffing rather than guess; the bytes still flow.
        if (length < 4 || type == (byte)'Z') { Done = true; return; }
        _bodyLeft = length - 4;
        _key = type == (byte)'K' && _bodyLeft is >= 8 and <= MaxKeyLength ? new byte[_bodyLeft] : null;
        _keyFill = 0;
        if (_bodyLeft == 0) EndBody();
    }

    private void EndBody()
    {
        if (_key != null) KeyFound?.Invoke(_key);
        _key = null;
        _headerFill = 0;
    }
}
