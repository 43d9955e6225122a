using System.Globalization;
using Microsoft.Extensions.Logging.Abstractions;
using Storage.Core;
using Storage.Core.Api;
using Storage.Core.Basebackup;
using Storage.Core.Postgres;
using Storage.Core.Processes;
using Storage.Core.Storage;
using Storage.Core.Wal;

namespace Storage.Core.Tests.Basebackup;

/// <summary>
/// A data directory assembled from an initdb image plus WAL starts a real PostgreSQL 15 whose WAL
/// continues exactly at the target LSN, with every committed row of the replayed WAL present.
/// </summary>
public sealed class BasebackupAssemblyTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("basebackup-test-").FullName;
    private readonly PostgresBinaries _binaries = PostgresBinaries.Locate();
    private readonly string _tenant = TimelineIds.New();

    public BasebackupAssemblyTests()
    {
        // PostgreSQL runs as the postgres user when we are root: it must reach the data directories.
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(_root, (UnixFileMode)0b111_101_101);
    }
    private readonly string _timeline = TimelineIds.New();

    [Fact]
    public async Task Image_alone_starts_postgres_writing_at_the_image_end()
    {
        var store = new ImageStore(Path.Combine(_root, "images"));
        var image = await new TimelineBootstrap(_binaries, store, NullLogger.Instance).CreateAsync(_tenant, _timeline, [], default);
        Assert.NotEqual(0UL, image.SystemIdentifier);

        var data = Path.Combine(_root, "c1");
        await new ImagePlusWalSource(store, (_, _, _, _) => throw new InvalidOperationException("no WAL needed"))
            .FetchAsync(_tenant, _timeline, image.EndLsn, data, default);
        await using var pg = await StartAsync(data, "c1");
        Assert.Equal("1", (await pg.RunSqlAsync("select 1")).Trim());

        // The first record PostgreSQL wrote is its end-of-recovery checkpoint, exactly at the image end.
        var first = ReadRecords(data, image.EndLsn, image.EndLsn + 8192L).First();
        Assert.Equal(image.EndLsn, first.Lsn);
        Assert.Equal(ResourceManagerId.Xlog, (ResourceManagerId)first.RmgrId);
    }

    [Fact]
    public async Task Image_plus_wal_replays_every_committed_row_and_continues_at_the_target()
    {
        var store = new ImageStore(Path.Combine(_root, "images"));
        var image = await new TimelineBootstrap(_binaries, store, NullLogger.Instance).CreateAsync(_tenant, _timeline, [], default);
        var first = Path.Combine(_root, "first");
        var source = new ImagePlusWalSource(store, (_, _, _, _) => throw new InvalidOperationException("no WAL needed"));
        await source.FetchAsync(_tenant, _timeline, image.EndLsn, first, default);

        Lsn end;
        await using (var pg = await StartAsync(first, "first"))
        {
            await pg.RunSqlAsync("create table t (id int primary key, v text)");
            await pg.RunSqlAsync("insert into t select g, md5(g::text) from generate_series(1, 5000) g");
            await pg.RunSqlAsync("select pg_switch_wal()"); // the WAL crosses a segment boundary
            await pg.RunSqlAsync("insert into t values (5001, 'last')");
            pg.Kill(); // like a crashed compute: no shutdown checkpoint
            await pg.Exited;
        }
        using (var wal = WalSegmentsStream(first, image.EndLsn))
            end = WalEnd.Find(wal, image.EndLsn);
        Assert.True(WalGeometry.Default.SegmentNumber(end) > WalGeometry.Default.SegmentNumber(image.EndLsn), $"WAL ends at {end}, in the image's segment");

        // Assemble a second data directory at `end` from the image and the first one's WAL.
        var second = Path.Combine(_root, "second");
        var replay = new ImagePlusWalSource(store, async (from, to, dest, ct) =>
        {
            await dest.WriteAsync(PgWalFiles.Read(Path.Combine(first, "pg_wal"), from, to), ct);
        });
        await replay.FetchAsync(_tenant, _timeline, end, second, default);
        await using (var pg = await StartAsync(second, "second"))
        {
            Assert.Equal("5001", (await pg.RunSqlAsync("select count(*) from t")).Trim());
            Assert.Equal("last", (await pg.RunSqlAsync("select v from t where id = 5001")).Trim());
            await pg.RunSqlAsync("insert into t values (5002, 'after replay')");
        }
        var next = ReadRecords(second, end, end + 8192L).First();
        Assert.Equal(end, next.Lsn); // new WAL continues exactly at the target
    }

    [Fact]
    public async Task Corrupt_image_is_refused()
    {
        var store = new ImageStore(Path.Combine(_root, "images"));
        var image = await new TimelineBootstrap(_binaries, store, NullLogger.Instance).CreateAsync(_tenant, _timeline, [], default);
        var tar = Directory.GetFiles(store.TimelineDirectory(_tenant, _timeline), "*.tar").Single();
        await using (var f = new FileStream(tar, FileMode.Open, FileAccess.ReadWrite))
        {
            f.Seek(4096, SeekOrigin.Begin);
            f.WriteByte(0x5A);
        }
        var e = await Assert.ThrowsAsync<CorruptFileException>(() =>
            new ImagePlusWalSource(store, (_, _, _, _) => Task.CompletedTask).FetchAsync(_tenant, _timeline, image.EndLsn, Path.Combine(_root, "x"), default));
        Assert.Contains("manifest", e.Message);
    }

    [Fact]
    public void Pg_control_state_edit_keeps_a_valid_crc()
    {
        var dir = Path.Combine(_root, "ctl", "global");
        Directory.CreateDirectory(dir);
        // A synthetic pg_control: fields, then the CRC of the bytes before it at offset 288.
        var bytes = new byte[8192];
        BitConverter.GetBytes(0x1234_5678_9ABC_DEF0UL).CopyTo(bytes, 0);
        BitConverter.GetBytes(1300u).CopyTo(bytes, 8);
        BitConverter.GetBytes((uint)DatabaseState.ShutDown).CopyTo(bytes, 16);
        BitConverter.GetBytes(Crc32C.Compute(bytes.AsSpan(0, 288))).CopyTo(bytes, 288);
        File.WriteAllBytes(Path.Combine(dir, "pg_control"), bytes);

        var control = PgControlFile.ReadFromDataDirectory(Path.Combine(_root, "ctl"));
        Assert.Equal(DatabaseState.ShutDown, control.State);
        control.SetState(DatabaseState.InProduction);
        control.Save();
        var again = PgControlFile.ReadFromDataDirectory(Path.Combine(_root, "ctl"));
        Assert.Equal(DatabaseState.InProduction, again.State);
        Assert.Equal(0x1234_5678_9ABC_DEF0UL, again.SystemIdentifier);

        bytes[100] ^= 1; // corrupt a covered byte
        File.WriteAllBytes(Path.Combine(dir, "pg_control"), bytes);
        Assert.Throws<CorruptFileException>(() => PgControlFile.ReadFromDataDirectory(Path.Combine(_root, "ctl")));
    }

    [Fact]
    public async Task Image_whose_tar_is_missing_is_refused_and_newest_image_at_or_below_is_found()
    {
        var store = new ImageStore(Path.Combine(_root, "images"));
        var data = Path.Combine(_root, "fake-data");
        Directory.CreateDirectory(data);
        File.WriteAllText(Path.Combine(data, "PG_VERSION"), "15\n");
        var older = await store.PutAsync(_tenant, _timeline, new Lsn(0x0100_0000), 1, data);
        var newer = await store.PutAsync(_tenant, _timeline, new Lsn(0x0200_0000), 1, data);
        Assert.Equal(older.EndLsn, store.FindLatest(_tenant, _timeline, new Lsn(0x01FF_FFFF))!.EndLsn);
        Assert.Equal(newer.EndLsn, store.FindLatest(_tenant, _timeline, new Lsn(0x0300_0000))!.EndLsn);
        Assert.Null(store.FindLatest(_tenant, _timeline, new Lsn(0x00FF_FFFF)));

        File.Delete(Directory.GetFiles(store.TimelineDirectory(_tenant, _timeline), "*0000000002000000.tar").Single());
        var e = await Assert.ThrowsAsync<CorruptFileException>(() => store.OpenVerifiedAsync(newer));
        Assert.Contains("missing", e.Message);
    }

    [Fact]
    public void Pg_control_of_another_postgres_version_is_refused()
    {
        var dir = Path.Combine(_root, "ctl-v", "global");
        Directory.CreateDirectory(dir);
        var bytes = new byte[8192];
        BitConverter.GetBytes(1201u).CopyTo(bytes, 8); // PostgreSQL 12's PG_CONTROL_VERSION
        File.WriteAllBytes(Path.Combine(dir, "pg_control"), bytes);
        var e = Assert.Throws<CorruptFileException>(() => PgControlFile.ReadFromDataDirectory(Path.Combine(_root, "ctl-v")));
        Assert.Contains("1300", e.Message);
    }

    private async Task<PostgresServer> StartAsync(string dataDirectory, string name)
    {
        var sockets = Path.Combine(_root, name + "-sock");
        Directory.CreateDirectory(sockets);
        await OsUser.GiveToPostgresAsync(sockets);
        int port = ServiceProcess.FreePort();
        await PostgresSettings.AppendAsync(dataDirectory, new Dictionary<string, string>
        {
            ["listen_addresses"] = "",
            ["port"] = port.ToString(CultureInfo.InvariantCulture),
            ["unix_socket_directories"] = sockets,
            ["fsync"] = "off",
        });
        return await PostgresServer.StartAsync(_binaries, dataDirectory, Path.Combine(_root, name + ".log"), sockets, port, TimeSpan.FromSeconds(60));
    }

    /// <summary>The WAL in a data directory's pg_wal from <paramref name="from"/> to the end of its last segment.</summary>
    private static Stream WalSegmentsStream(string dataDirectory, Lsn from)
    {
        var pgWal = Path.Combine(dataDirectory, "pg_wal");
        return new MemoryStream(PgWalFiles.Read(pgWal, from, PgWalFiles.EndOfSegments(pgWal)));
    }

    private static IEnumerable<WalRecord> ReadRecords(string dataDirectory, Lsn from, Lsn to)
    {
        var decoder = new WalDecoder(from);
        decoder.Feed(PgWalFiles.Read(Path.Combine(dataDirectory, "pg_wal"), from, to));
        var records = new List<WalRecord>();
        while (decoder.TryDecodeNext(out var record)) records.Add(record);
        return records;
    }

    public void Dispose()
    {
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
