using Storage.Core;
using Storage.Core.Storage;
using Storage.Core.Wal;

namespace Storage.Pageserver.Wal;

/// <summary>A commit: the end of its record (where a branch "after this commit" starts) and its time.</summary>
public readonly record struct CommitPoint(Lsn End, DateTimeOffset Time);

/// <summary>A checkpoint record: where it is, and the redo point replay from it would start at.</summary>
public readonly record struct CheckpointPoint(Lsn Lsn, Lsn Redo, bool Shutdown);

/// <summary>A relation block, the unit the index tracks changes of.</summary>
public readonly record struct BlockKey(RelFileNode Rel, ForkNumber Fork, uint Block);

/// <summary>
/// What the WAL records starting in one segment contain: how many, their commits with times, the
/// checkpoints, and every relation block they touch with the last LSN that touched it (what an
/// incremental image would copy). Written when the segment is finished, checksummed.
/// </summary>
internal sealed class SegmentIndex
{
    private const string Magic = "SIDX";

    public required ulong Segment { get; init; }
    public long RecordCount { get; set; }
    public List<CommitPoint> Commits { get; } = [];
    public List<CheckpointPoint> Checkpoints { get; } = [];
    public Dictionary<BlockKey, Lsn> TouchedBlocks { get; } = [];

    public void Add(WalRecord record)
    {
        RecordCount++;
        foreach (var block in record.BlockReferences)
            TouchedBlocks[new BlockKey(block.Rel, block.Fork, block.BlockNumber)] = record.Lsn;
        if (record.RmgrId == (byte)ResourceManagerId.Transaction && XactRecord.TryFrom(record) is { IsCommit: true } xact)
            Commits.Add(new CommitPoint(record.EndLsn, xact.Time));
        else if (record.RmgrId == (byte)ResourceManagerId.Xlog && CheckpointRecord.TryFrom(record) is { } checkpoint)
            Checkpoints.Add(new CheckpointPoint(record.Lsn, checkpoint.Redo, checkpoint.IsShutdown));
    }

    public static string FileName(string segmentFileName) => segmentFileName + ".index";

    public byte[] Serialize()
    {
        using var buffer = new MemoryStream();
        using (var w = new BinaryWriter(buffer))
        {
            w.Write(Segment);
            w.Write(RecordCount);
            w.Write(Commits.Count);
            foreach (var c in Commits) { w.Write(c.End.Value); w.Write((c.Time - DateTimeOffset.UnixEpoch).Ticks); }
            w.Write(Checkpoints.Count);
            foreach (var c in Checkpoints) { w.Write(c.Lsn.Value); w.Write(c.Redo.Value); w.Write(c.Shutdown); }
            w.Write(TouchedBlocks.Count);
            foreach (var (key, lsn) in TouchedBlocks)
            {
                w.Write(key.Rel.SpcNode); w.Write(key.Rel.DbNode); w.Write(key.Rel.RelNode);
                w.Write((byte)key.Fork); w.Write(key.Block); w.Write(lsn.Value);
            }
        }
        return buffer.ToArray();
    }

    public static SegmentIndex Deserialize(ReadOnlySpan<byte> bytes, string source)
    {
        try
        {
            using var r = new BinaryReader(new MemoryStream(bytes.ToArray()));
            var index = new SegmentIndex { Segment = r.ReadUInt64() };
            index.RecordCount = r.ReadInt64();
            for (int i = r.ReadInt32(); i > 0; i--)
                index.Commits.Add(new CommitPoint(new Lsn(r.ReadUInt64()), DateTimeOffset.UnixEpoch.AddTicks(r.ReadInt64())));
            for (int i = r.ReadInt32(); i > 0; i--)
                index.Checkpoints.Add(new CheckpointPoint(new Lsn(r.ReadUInt64()), new Lsn(r.ReadUInt64()), r.ReadBoolean()));
            for (int i = r.ReadInt32(); i > 0; i--)
            {
                var key = new BlockKey(new RelFileNode(r.ReadUInt32(), r.ReadUInt32(), r.ReadUInt32()), (ForkNumber)r.ReadByte(), r.ReadUInt32());
                index.TouchedBlocks[key] = new Lsn(r.ReadUInt64());
            }
            return index;
        }
        catch (EndOfStreamException) { throw new CorruptFileException(source, "segment index is truncated"); }
    }

    public void Save(string path) => ChecksummedFile.Write(path, Magic, 1, Serialize());

    public static SegmentIndex Load(string path) => Deserialize(ChecksummedFile.Read(path, Magic).Payload, path);
}
