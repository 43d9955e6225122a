using Google.Protobuf;
using Storage.Core;
using Storage.Core.Consensus;
using Storage.Core.Storage;
using Storage.Proto.Safekeeper;
using Storage.Safekeeper.Consensus;

namespace Storage.Safekeeper.Storage;

/// <summary>What a timeline was created with; fixed for its lifetime.</summary>
internal sealed record TimelineIdentity(string TenantId, string TimelineId, uint PgVersion, ulong SystemId, int WalSegmentSize);

/// <summary>The per-timeline control file: acceptor state plus identity, CRC-checked, replaced atomically.</summary>
internal static class ControlFile
{
    public const string FileName = "safekeeper.control";
    private const string Magic = "SKCF";
    // Version 2 added local_start_lsn; version 1 files (without it) still load.
    private const uint Version = 2;

    public static void Save(string timelineDir, TimelineIdentity id, AcceptorState state)
    {
        var data = new ControlFileData
        {
            Timeline = new TimelineKey { TenantId = id.TenantId, TimelineId = id.TimelineId },
            Term = state.Term,
            TimelineStartLsn = state.TimelineStartLsn.Value,
            LocalStartLsn = state.LocalStartLsn.Value,
            CommitLsn = state.CommitLsn.Value,
            BackupLsn = state.BackupLsn.Value,
            RemoteConsistentLsn = state.RemoteConsistentLsn.Value,
            FlushLsnAtSave = state.FlushLsnAtSave.Value,
            PgVersion = id.PgVersion,
            SystemId = id.SystemId,
            WalSegmentSize = (uint)id.WalSegmentSize,
        };
        data.TermHistory.AddRange(state.History.ToProto());
        ChecksummedFile.Write(Path.Combine(timelineDir, FileName), Magic, Version, data.ToByteArray());
    }

    public static (TimelineIdentity Identity, AcceptorState State) Load(string timelineDir)
    {
        var path = Path.Combine(timelineDir, FileName);
        var (payload, version) = ChecksummedFile.Read(path, Magic);
        if (version is < 1 or > Version) throw new CorruptFileException(path, $"unsupported control file version {version}");
        ControlFileData data;
        try { data = ControlFileData.Parser.ParseFrom(payload); }
        catch (InvalidProtocolBufferException e) { throw new CorruptFileException(path, $"undecodable payload: {e.Message}"); }
        TermHistory history;
        try { history = TermHistory.FromProto(data.TermHistory); }
        catch (ArgumentException e) { throw new CorruptFileException(path, e.Message); }
        var identity = new TimelineIdentity(data.Timeline.TenantId, data.Timeline.TimelineId, data.PgVersion, data.SystemId, (int)data.WalSegmentSize);
        var state = new AcceptorState
        {
            Term = data.Term,
            History = history,
            TimelineStartLsn = new Lsn(data.TimelineStartLsn),
            LocalStartLsn = new Lsn(Math.Max(data.LocalStartLsn, data.TimelineStartLsn)),
            CommitLsn = new Lsn(data.CommitLsn),
            BackupLsn = new Lsn(data.BackupLsn),
            RemoteConsistentLsn = new Lsn(data.RemoteConsistentLsn),
            FlushLsnAtSave = new Lsn(data.FlushLsnAtSave),
        };
        return (identity, state);
    }
}
