using System.Buffers.Binary;
using Storage.Core.Storage;

namespace Storage.Core.Postgres;

/// <summary>PostgreSQL's DBState (pg_control.h), as far as we need it.</summary>
public enum DatabaseState : uint
{
    Startup = 0,
    ShutDown = 1,
    ShutDownInRecovery = 2,
    ShuttingDown = 3,
    InCrashRecovery = 4,
    InArchiveRecovery = 5,
    InProduction = 6,
}

/// <summary>
/// Reads and edits <c>global/pg_control</c> of a PostgreSQL 15 data directory. We only touch the
/// leading fields whose layout is fixed (system identifier, versions, state, checkpoint location)
/// and re-compute the CRC-32C that PostgreSQL checks at start-up.
/// </summary>
/// <remarks>
/// Why edit it at all: a data directory assembled from an image plus WAL up to E must replay that
/// WAL on start. PostgreSQL replays only when it believes it crashed, so a cleanly shut down image
/// is marked "in production" — the state of a server that was killed — and crash recovery then
/// replays to the end of the WAL we put in pg_wal, which is exactly E.
/// </remarks>
public sealed class PgControlFile
{
    public const string RelativePath = "global/pg_control";
    private const int FileSize = 8192;          // PG_CONTROL_FILE_SIZE
    private const int StateOffset = 16;
    private const int CheckpointOffset = 32;
    private const int RedoOffset = 40;          // checkPointCopy.redo

    private readonly byte[] _bytes;
    private readonly int _crcOffset;

    private PgControlFile(string path, byte[] bytes, int crcOffset)
    {
        Path = path;
        _bytes = bytes;
        _crcOffset = crcOffset;
    }

    public string Path { get; }
    public ulong SystemIdentifier => BinaryPrimitives.ReadUInt64LittleEndian(_bytes);
    public uint ControlVersion => BinaryPrimitives.ReadUInt32LittleEndian(_bytes.AsSpan(8));
    public DatabaseState State => (DatabaseState)BinaryPrimitives.ReadUInt32LittleEndian(_bytes.AsSpan(StateOffset));
    /// <summary>Location of the latest checkpoint record.</summary>
    public Lsn Checkpoint => new(BinaryPrimitives.ReadUInt64LittleEndian(_bytes.AsSpan(CheckpointOffset)));
    /// <summary>Where replay from that checkpoint starts.</summary>
    public Lsn Redo => new(BinaryPrimitives.ReadUInt64LittleEndian(_bytes.AsSpan(RedoOffset)));

    public static PgControlFile ReadFromDataDirectory(string dataDirectory) =>
        Read(System.IO.Path.Combine(dataDirectory, RelativePath));

    public static PgControlFile Read(string path) => Parse(path, File.ReadAllBytes(path));

    /// <summary>Parses pg_control's bytes (e.g. from a tar entry); <paramref name="path"/> names it in errors.</summary>
    public static PgControlFile Parse(string path, byte[] bytes)
    {
        if (bytes.Length != FileSize)
            throw new CorruptFileException(path, $"pg_control is {bytes.Length} bytes, expected {FileSize}");
        var version = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(8));
        if (version != 1300) // PG_CONTROL_VERSION of PostgreSQL 15
            throw new CorruptFileException(path, $"pg_control version {version} is not PostgreSQL 15's (1300)");
        return new PgControlFile(path, bytes, FindCrcOffset(path, bytes));
    }

    /// <summary>
    /// The CRC sits right after ControlFileData and covers everything before it. Rather than
    /// hard-coding the struct size, find the 4-byte-aligned offset whose stored value is the CRC of
    /// the bytes before it; that also proves the file is intact.
    /// </summary>
    private static int FindCrcOffset(string path, byte[] bytes)
    {
        uint crc = Crc32C.Initial;
        for (int offset = 0; offset + 4 <= 1024; offset += 4)
        {
            if (offset >= 48 && Crc32C.Finish(crc) == BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(offset)))
                return offset;
            crc = Crc32C.Append(crc, bytes.AsSpan(offset, 4));
        }
        throw new CorruptFileException(path, "pg_control has no valid CRC-32C (corrupt or not PostgreSQL 15)");
    }

    /// <summary>Changes the state and re-computes the CRC (in memory; call <see cref="Save"/>).</summary>
    public void SetState(DatabaseState state)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(_bytes.AsSpan(StateOffset), (uint)state);
        BinaryPrimitives.WriteUInt32LittleEndian(_bytes.AsSpan(_crcOffset), Crc32C.Compute(_bytes.AsSpan(0, _crcOffset)));
    }

    /// <summary>The file's current bytes (with any changes made).</summary>
    public ReadOnlySpan<byte> Bytes => _bytes;

    /// <summary>Overwrites the file in place and fdatasyncs it (PostgreSQL does the same).</summary>
    public void Save()
    {
        using var handle = File.OpenHandle(Path, FileMode.Open, FileAccess.Write);
        RandomAccess.Write(handle, _bytes, 0);
        FileSync.DataSync(handle);
    }
}
