using Google.Protobuf;
using Storage.Core;
using Storage.Core.Api;
using Storage.Core.Consensus;
using Storage.Core.Wal;
using Storage.Proto.Safekeeper;
using Storage.Safekeeper.Consensus;
using Storage.Safekeeper.Storage;
using Storage.Testing;

namespace Storage.Safekeeper.Tests.Storage;

/// <summary>On a really full disk (a small tmpfs), a write or a save fails changing nothing, and works once space is back.</summary>
public class DiskFullStorageTests : IDisposable
{
    private static readonly WalGeometry G = WalGeometry.Default;
    private static readonly Lsn Start = new(0x0100_0000); // segment 1
    private readonly string _root = Directory.CreateTempSubdirectory("sk-disk-full-").FullName;
    private readonly TimelineIdentity _id = new(TimelineIds.New(), TimelineIds.New(), 150000, 42, G.SegmentSize);

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public async Task A_write_or_control_file_save_on_a_full_disk_changes_nothing_and_succeeds_once_space_is_back()
    {
        using var disk = SmallDisk.Mount(36, Path.Combine(_root, "disk"));
        var dir = Path.Combine(disk.Path, _id.TenantId, _id.TimelineId);
        Directory.CreateDirectory(dir);
        ControlFile.Save(dir, _id, AcceptorState.New(Start));
        var files = new SegmentFiles(dir, G);
        var store = new WalStore(files, Start);
        var storage = new TimelineStorage(dir, _id, AcceptorState.New(Start), store);
        var acceptor = new Acceptor(storage, 1, "az-a");
        acceptor.OnVoteRequest(new VoteRequest { Term = 1 });
        var elected = new ProposerElected { Term = 1, StartStreamingAt = Start.Value };
        elected.TermHistory.AddRange(new TermHistory([new TermSwitch(1, Start)]).ToProto());
        acceptor.OnElected(elected);

        var builder = new WalBuilder(Start);
        var source = new SyntheticTransactions(builder, new Random(8));
        var wal = new MemoryStream();
        AppendRequest Next(int bytes)
        {
            var begin = builder.EndLsn;
            var data = source.Next(bytes);
            wal.Write(data);
            return new AppendRequest { Term = 1, BeginLsn = begin.Value, EndLsn = builder.EndLsn.Value, WalData = ByteString.CopyFrom(data) };
        }
        acceptor.OnAppend(Next(G.SegmentSize - 200_000)); // segment 1 (16 MiB) is preallocated
        store.Flush();
        var filler = disk.AddFiller(12 << 20); // 36 - 16 - 12: no room for segment 2

        // An append that needs segment 2: refused before any byte of it is written.
        var crossing = Next(400_000);
        var writeLsn = acceptor.WriteLsn;
        var full = Assert.ThrowsAny<IOException>(() => acceptor.OnAppend(crossing));
        Assert.True(Core.Storage.DiskFull.Is(full), full.ToString());
        Assert.Equal(writeLsn, acceptor.WriteLsn);
        Assert.Empty(files.UnfinishedPreallocations());
        Assert.Null(files.Find(2));

        // A control file save on a disk without a byte left: neither memory nor the file changes.
        var rest = disk.FillUp();
        var state = storage.State;
        var saveFailed = Assert.ThrowsAny<IOException>(() => acceptor.OnVoteRequest(new VoteRequest { Term = 2 }));
        Assert.True(Core.Storage.DiskFull.Is(saveFailed), saveFailed.ToString());
        Assert.Same(state, storage.State);
        Assert.Equal(1UL, acceptor.Term);
        Assert.Equal(1UL, ControlFile.Load(dir).State.Term);

        // Space is back: the same requests succeed.
        File.Delete(rest);
        File.Delete(filler);
        acceptor.OnAppend(crossing);
        store.Flush();
        Assert.True(acceptor.OnVoteRequest(new VoteRequest { Term = 2 }).VoteGiven);
        store.Dispose();

        await using var registry = RestartedNode.Load(disk.Path);
        var timeline = registry.Get(new TimelineKey { TenantId = _id.TenantId, TimelineId = _id.TimelineId });
        Assert.Equal(builder.EndLsn, new Lsn(timeline.Status().FlushLsn));
        Assert.Equal(2UL, timeline.Status().Term);
        Assert.Equal(wal.ToArray(), RestartedNode.ReadWal(timeline, Start, builder.EndLsn));
    }
}
