namespace Storage.Core.Wal;

/// <summary>Identifies a relation's files: tablespace, database and relation OIDs (RelFileNode).</summary>
public readonly record struct RelFileNode(uint SpcNode, uint DbNode, uint RelNode)
{
    public override string ToString() => $"{SpcNode}/{DbNode}/{RelNode}";
}

/// <summary>The files of a relation (ForkNumber).</summary>
public enum ForkNumber : byte { Main = 0, Fsm = 1, VisibilityMap = 2, Init = 3 }

public static class ForkNames
{
    /// <summary>PostgreSQL's forkNames[]: main, fsm, vm, init.</summary>
    public static string Name(ForkNumber fork) => fork switch
    {
        ForkNumber.Main => "main",
        ForkNumber.Fsm => "fsm",
        ForkNumber.VisibilityMap => "vm",
        ForkNumber.Init => "init",
        _ => $"fork{(int)fork}",
    };
}

/// <summary>How a full-page image is compressed (PostgreSQL 15 wal_compression).</summary>
public enum ImageCompression { None, Pglz, Lz4, Zstd }

/// <summary>A full-page image stored in a record (XLogRecordBlockImageHeader + its bytes).</summary>
public sealed record FullPageImage(
    ushort Length,
    ushort HoleOffset,
    ushort HoleLength,
    byte Info,
    ReadOnlyMemory<byte> Bytes)
{
    /// <summary>False for images logged only for wal_consistency_checking.</summary>
    public bool IsApplied => (Info & WalFormat.BkpImageApply) != 0;
    public bool HasHole => (Info & WalFormat.BkpImageHasHole) != 0;

    /// <summary>
    /// The 8 KiB page the image stands for: the stored bytes with the hole (unused middle of the
    /// page) filled with zeros. Compressed images are not supported.
    /// </summary>
    public byte[] RestorePage()
    {
        if (Compression != ImageCompression.None)
            throw new NotSupportedException($"full-page image is {Compression}-compressed; decompression is not implemented");
        var page = new byte[WalFormat.BlockSize];
        var bytes = Bytes.Span;
        bytes[..HoleOffset].CopyTo(page);
        bytes[HoleOffset..].CopyTo(page.AsSpan(HoleOffset + HoleLength));
        return page;
    }

    public ImageCompression Compression =>
        (Info & WalFormat.BkpImageCompressPglz) != 0 ? ImageCompression.Pglz
        : (Info & WalFormat.BkpImageCompressLz4) != 0 ? ImageCompression.Lz4
        : (Info & WalFormat.BkpImageCompressZstd) != 0 ? ImageCompression.Zstd
        : ImageCompression.None;
}

/// <summary>One page a record touches (a "blkref" in pg_waldump).</summary>
public sealed record BlockReference(
    byte BlockId,
    RelFileNode Rel,
    ForkNumber Fork,
    uint BlockNumber,
    byte ForkFlags,
    FullPageImage? Image,
    ReadOnlyMemory<byte> Data)
{
    public bool HasImage => Image != null;
    public bool HasData => (ForkFlags & WalFormat.BkpBlockHasData) != 0;
    /// <summary>The record re-initialises the page, so no prior page content is needed.</summary>
    public bool WillInit => (ForkFlags & WalFormat.BkpBlockWillInit) != 0;
    public int DataLength => Data.Length;
}
