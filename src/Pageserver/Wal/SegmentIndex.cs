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
/// What the WAL records starting in one segment contain: where each record starts (the record
/// boundaries), which relation blocks each touches, their commits with times and the checkpoints;
/// and every block touched with the last LSN that touched it (what an incremental image would
/// copy). Written when the segment is finished, checksummed.
/// </summary>
internal sealed class SegmentIndex
{
    private const string Magic = "SIDX";
    private readonly Dictionary<BlockKey, int> _blockIds = [];

    public required ulong Segment { get; init; }
    public long RecordCount => RecordStarts.Count;
    /// <summary>Start of each record, as an offset from the segment's start, ascending.</summary>
    public List<uint> RecordStarts { get; } = [];
    /// <summary>How many blocks each record touches (parallel to <see cref="RecordStarts"/>)...</summary>
    public List<byte> RecordBlockCounts { get; } = [];
    /// <summary>...and which: indexes into <see cref="Blocks"/>, record after record.</summary>
    public List<int> RecordBlocks { get; } = [];
    /// <summary>Every distinct block touched, and the last LSN that touched it (parallel lists).</summary>
    public List<BlockKey> Blocks { get; } = [];
    public List<Lsn> BlockLastLsns { get; } = [];
    public List<CommitPoint> Commits { get; } = [];
    public List<CheckpointPoint> Checkpoints { get; } = [];

    /// <summary>Every distinct block touched with the last LSN that touched it.</summary>
    public IReadOnlyDictionary<BlockKey, Lsn> TouchedBlocks => Blocks.Zip(BlockLastLsns).ToDictionary(p => p.First, p => p.Second);

    /// <summary>Whether a record of this segment starts at <paramref name="lsn"/>.</summary>
    public bool IsRecordStart(Lsn lsn, WalGeometry geometry) =>
        geometry.SegmentNumber(lsn) == Segment && RecordStarts.BinarySearch((uint)geometry.SegmentOffset(lsn)) >= 0;

    /// <summary>The blocks the record starting at offset index <paramref name="record"/> touches.</summary>
    public IEnumerable<BlockKey> BlocksOf(int record)
    {
        int first = 0;
        for (int i = 0; i < record; i++) first += RecordBlockCounts[i];
        for (int i = 0; i < RecordBlockCounts[record]; i++) yield return Blocks[RecordBlocks[first + i]];
    }

    public void Add(WalRecord record)
    {
        RecordStarts.Add((uint)(record.Lsn.Value % (ulong)WalGeometry.DefaultSegmentSize));
        RecordBlockCounts.Add((byte)record.BlockReferences.Count); // at most 33 block references per record
        foreach (var block in record.BlockReferences)
        {
            var key = new BlockKey(block.Rel, block.Fork, block.BlockNumber);
            if (!_blockIds.TryGetValue(key, out var id))
            {
                id = Blocks.Count;
                _blockIds[key] = id;
                Blocks.Add(key);
                BlockLastLsns.Add(record.Lsn);
            }
            else BlockLastLsns[id] = record.Lsn;
            RecordBlocks.Add(id);
        }
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
            w.Write(RecordStarts.Count);
            foreach (var start in RecordStarts) w.Write(start);
            foreach (var count in RecordBlockCounts) w.Write(count);
            w.Write(RecordBlocks.Count);
            foreach (var id in RecordBlocks) w.Write(id);
            w.Write(Commits.Count);
            foreach (var c in Commits) { w.Write(c.End.Value); w.Write((c.Time - DateTimeOffset.UnixEpoch).Ticks); }
            w.Write(Checkpoints.Count);
            foreach (var c in Checkpoints) { w.Write(c.Lsn.Value); w.Write(c.Redo.Value); w.Write(c.Shutdown); }
            w.Write(Blocks.Count);
            for (int i = 0; i < Blocks.Count; i++)
            {
                var key = Blocks[i];
                w.Write(key.Rel.SpcNode); w.Write(key.Rel.DbNode); w.Write(key.Rel.RelNode);
                w.Write((byte)key.Fork); w.Write(key.Block); w.Write(BlockLastLsns[i].Value);
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
            int records = r.ReadInt32();
            for (int i = 0; i < records; i++) index.RecordStarts.Add(r.ReadUInt32());
            for (int i = 0; i < records; i++) index.RecordBlockCounts.Add(r.ReadByte());
            for (int i = r.ReadInt32(); i > 0; i--) index.RecordBlocks.Add(r.ReadInt32());
            for (int i = r.ReadInt32(); i > 0; i--)
                index.Commits.Add(new CommitPoint(new Lsn(r.ReadUInt64()), DateTimeOffset.UnixEpoch.AddTicks(r.ReadInt64())));
            for (int i = r.ReadInt32(); i > 0; i--)
                index.Checkpoints.Add(new CheckpointPoint(new Lsn(r.ReadUInt64()), new Lsn(r.ReadUInt64()), r.ReadBoolean()));
            for (int i = r.ReadInt32(); i > 0; i--)
            {
                var key = new BlockKey(new RelFileNode(r.ReadUInt32(), r.ReadUInt32(), r.ReadUInt32()), (ForkNumber)r.ReadByte(), r.ReadUInt32());
                index._blockIds[key] = index.Blocks.Count;
                index.Blocks.Add(key);
                index.BlockLastLsns.Add(new Lsn(r.ReadUInt64()));
            }
            return index;
        }
        catch (EndOfStreamException) { throw new CorruptFileException(source, "segment index is truncated"); }
    }

    public void Save(string path) => ChecksummedFile.Write(path, Magic, FormatVersion, Serialize());

    public static SegmentIndex Load(string path)
    {
        var (payload, version) = ChecksummedFile.Read(path, Magic);
        if (version != FormatVersion) throw new CorruptFileException(path, $"segment index format {version}, this pageserver reads {FormatVersion}");
        return Deserialize(payload, path);
    }

    private const uint FormatVersion = 2;
}
