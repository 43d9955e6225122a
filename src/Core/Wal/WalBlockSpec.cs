namespace Storage.Core.Wal;

/// <summary>
/// A block reference for <see cref="WalBuilder.AppendRecord(byte, byte, uint, IReadOnlyList{WalBlockSpec}, ReadOnlySpan{byte})"/>:
/// the page a record touches, optional per-block data and an optional uncompressed full-page image.
/// </summary>
public sealed record WalBlockSpec(RelFileNode Rel, ForkNumber Fork, uint BlockNumber)
{
    public ReadOnlyMemory<byte> Data { get; init; }
    /// <summary>The whole 8 KiB page to log as a full-page image; empty for none.</summary>
    public ReadOnlyMemory<byte> PageImage { get; init; }
    /// <summary>An unused byte range of <see cref="PageImage"/> that is left out of the WAL.</summary>
    public ushort HoleOffset { get; init; }
    public ushort HoleLength { get; init; }
    public bool WillInit { get; init; }
}
