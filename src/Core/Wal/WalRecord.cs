using System.Buffers.Binary;

namespace Storage.Core.Wal;

/// <summary>
/// One decoded WAL record. <see cref="Lsn"/> is where its header starts; <see cref="EndLsn"/> is
/// where the next record may start (PostgreSQL's EndRecPtr: the MAXALIGN'd end, or the next segment
/// start after an XLOG_SWITCH).
/// </summary>
public sealed record WalRecord
{
    public required Lsn Lsn { get; init; }
    public required Lsn EndLsn { get; init; }
    /// <summary>xl_tot_len: header, block headers, images, block data and main data.</summary>
    public required uint TotalLength { get; init; }
    public required uint Xid { get; init; }
    public required Lsn Prev { get; init; }
    public required byte Info { get; init; }
    public required byte RmgrId { get; init; }
    public required uint Crc { get; init; }
    public required IReadOnlyList<BlockReference> BlockReferences { get; init; }
    public required ReadOnlyMemory<byte> MainData { get; init; }
    /// <summary>Replication origin (XLR_BLOCK_ID_ORIGIN), 0 when absent.</summary>
    public ushort Origin { get; init; }
    /// <summary>Top-level transaction of a subtransaction (XLR_BLOCK_ID_TOPLEVEL_XID), 0 when absent.</summary>
    public uint TopLevelXid { get; init; }
    /// <summary>The whole record as it is in WAL, without page headers.</summary>
    public required ReadOnlyMemory<byte> RawBytes { get; init; }

    public string RmgrName => ResourceManager.Name(RmgrId);
    /// <summary>The resource manager's own info bits (xl_info &amp; 0xF0).</summary>
    public byte RmgrInfo => (byte)(Info & WalFormat.XlrRmgrInfoMask);

    /// <summary>Bytes of full-page images, as pg_waldump counts them.</summary>
    public int FullPageImageLength => BlockReferences.Sum(b => b.Image?.Length ?? 0);
    /// <summary>pg_waldump's "rec" length: total length without full-page images.</summary>
    public uint RecordLength => TotalLength - (uint)FullPageImageLength;

    public bool IsSwitch => RmgrId == (byte)ResourceManagerId.Xlog && RmgrInfo == XlogInfo.Switch;

    /// <summary>True if the record's bytes (not counting alignment padding) cross a page boundary.</summary>
    public bool SpansPages(WalGeometry geometry) =>
        geometry.PageStartOf(Lsn) != geometry.PageStartOf(Lsn + (ulong)(TotalLength - 1));

    /// <summary>Parses the record bytes (without page headers) into a record.</summary>
    internal static WalRecord Parse(Lsn lsn, Lsn endLsn, byte[] raw)
    {
        var span = raw.AsSpan();
        var totLen = BinaryPrimitives.ReadUInt32LittleEndian(span);
        var blocks = new List<BlockReference>();
        int pos = WalFormat.RecordHeaderSize;
        uint mainDataLength = 0;
        ushort origin = 0;
        uint topXid = 0;
        RelFileNode lastRel = default;
        bool haveRel = false;

        // Pending per-block descriptions: their payloads come after all headers.
        var pending = new List<(byte Id, byte ForkFlags, ushort DataLen, RelFileNode Rel, uint Blk, ushort ImgLen, ushort HoleOff, ushort HoleLen, byte ImgInfo, bool HasImage)>();

        void Need(int count, string what)
        {
            if (pos + count > raw.Length)
                throw new WalDecodeException(lsn, $"record at {lsn} too short: {what} runs past xl_tot_len {totLen}");
        }

        // Like DecodeXLogRecord: headers continue while more bytes remain than the payloads
        // announced so far (images, block data, main data) will take.
        long payloadTotal = 0;
        while (raw.Length - pos > payloadTotal)
        {
            Need(1, "block id");
            byte id = raw[pos];
            if (id == WalFormat.XlrBlockIdDataShort)
            {
                Need(2, "main data length");
                mainDataLength = raw[pos + 1];
                payloadTotal += mainDataLength;
                pos += 2;
                continue;
            }
            if (id == WalFormat.XlrBlockIdDataLong)
            {
                Need(5, "main data length");
                mainDataLength = BinaryPrimitives.ReadUInt32LittleEndian(span[(pos + 1)..]);
                payloadTotal += mainDataLength;
                pos += 5;
                continue;
            }
            if (id == WalFormat.XlrBlockIdOrigin)
            {
                Need(3, "origin");
                origin = BinaryPrimitives.ReadUInt16LittleEndian(span[(pos + 1)..]);
                pos += 3;
                continue;
            }
            if (id == WalFormat.XlrBlockIdTopLevelXid)
            {
                Need(5, "top-level xid");
                topXid = BinaryPrimitives.ReadUInt32LittleEndian(span[(pos + 1)..]);
                pos += 5;
                continue;
            }
            if (id > WalFormat.XlrMaxBlockId)
                throw new WalDecodeException(lsn, $"invalid block_id {id} at {lsn}");
            if (pending.Count > 0 && id <= pending[^1].Id)
                throw new WalDecodeException(lsn, $"out-of-order block_id {id} at {lsn}");

            Need(4, "block header");
            byte forkFlags = raw[pos + 1];
            ushort dataLen = BinaryPrimitives.ReadUInt16LittleEndian(span[(pos + 2)..]);
            pos += 4;
            bool hasData = (forkFlags & WalFormat.BkpBlockHasData) != 0;
            if (hasData != (dataLen > 0))
                throw new WalDecodeException(lsn, $"BKPBLOCK_HAS_DATA {(hasData ? "set, but no data included" : "not set, but data length is " + dataLen)} at {lsn}");

            bool hasImage = (forkFlags & WalFormat.BkpBlockHasImage) != 0;
            ushort imgLen = 0, holeOff = 0, holeLen = 0;
            byte imgInfo = 0;
            if (hasImage)
            {
                Need(5, "block image header");
                imgLen = BinaryPrimitives.ReadUInt16LittleEndian(span[pos..]);
                holeOff = BinaryPrimitives.ReadUInt16LittleEndian(span[(pos + 2)..]);
                imgInfo = raw[pos + 4];
                pos += 5;
                bool compressed = (imgInfo & WalFormat.BkpImageCompressMask) != 0;
                bool hasHole = (imgInfo & WalFormat.BkpImageHasHole) != 0;
                if (compressed && hasHole)
                {
                    Need(2, "hole length");
                    holeLen = BinaryPrimitives.ReadUInt16LittleEndian(span[pos..]);
                    pos += 2;
                }
                else if (hasHole)
                {
                    holeLen = (ushort)(WalFormat.BlockSize - imgLen);
                }
                if (imgLen == 0 || (!compressed && !hasHole && imgLen != WalFormat.BlockSize))
                    throw new WalDecodeException(lsn, $"invalid full-page image length {imgLen} (hole offset {holeOff}) at {lsn}");
            }

            RelFileNode rel;
            if ((forkFlags & WalFormat.BkpBlockSameRel) == 0)
            {
                Need(12, "RelFileNode");
                rel = new RelFileNode(
                    BinaryPrimitives.ReadUInt32LittleEndian(span[pos..]),
                    BinaryPrimitives.ReadUInt32LittleEndian(span[(pos + 4)..]),
                    BinaryPrimitives.ReadUInt32LittleEndian(span[(pos + 8)..]));
                pos += 12;
                lastRel = rel;
                haveRel = true;
            }
            else
            {
                if (!haveRel)
                    throw new WalDecodeException(lsn, $"BKPBLOCK_SAME_REL set but no previous rel at {lsn}");
                rel = lastRel;
            }
            Need(4, "block number");
            uint blk = BinaryPrimitives.ReadUInt32LittleEndian(span[pos..]);
            pos += 4;
            payloadTotal += imgLen + dataLen;
            pending.Add((id, forkFlags, dataLen, rel, blk, imgLen, holeOff, holeLen, imgInfo, hasImage));
        }

        // Payloads: for each block its image then its data, then the main data.
        foreach (var p in pending)
        {
            FullPageImage? image = null;
            if (p.HasImage)
            {
                Need(p.ImgLen, "block image");
                image = new FullPageImage(p.ImgLen, p.HoleOff, p.HoleLen, p.ImgInfo, raw.AsMemory(pos, p.ImgLen));
                pos += p.ImgLen;
            }
            Need(p.DataLen, "block data");
            var data = raw.AsMemory(pos, p.DataLen);
            pos += p.DataLen;
            blocks.Add(new BlockReference(p.Id, p.Rel, (ForkNumber)(p.ForkFlags & WalFormat.BkpBlockForkMask), p.Blk, p.ForkFlags, image, data));
        }
        Need((int)mainDataLength, "main data");
        var mainData = raw.AsMemory(pos, (int)mainDataLength);
        pos += (int)mainDataLength;
        if (pos != raw.Length)
            throw new WalDecodeException(lsn, $"record at {lsn} has {raw.Length - pos} unexplained bytes after its data");

        return new WalRecord
        {
            Lsn = lsn,
            EndLsn = endLsn,
            TotalLength = totLen,
            Xid = BinaryPrimitives.ReadUInt32LittleEndian(span[4..]),
            Prev = new Lsn(BinaryPrimitives.ReadUInt64LittleEndian(span[8..])),
            Info = raw[16],
            RmgrId = raw[17],
            Crc = BinaryPrimitives.ReadUInt32LittleEndian(span[WalFormat.RecordCrcOffset..]),
            BlockReferences = blocks,
            MainData = mainData,
            Origin = origin,
            TopLevelXid = topXid,
            RawBytes = raw,
        };
    }
}
