using System.Buffers.Binary;
using System.Text;

namespace Storage.Core.Storage;

/// <summary>A persistent file failed its checks: it must not be used.</summary>
public sealed class CorruptFileException(string path, string problem)
    : Exception($"corrupt file {path}: {problem}")
{
    public string FilePath { get; } = path;
}

/// <summary>
/// Small persistent files (control files, manifests) written so that a crash leaves either the old
/// or the new version (write a temp file, fsync, rename over, fsync the directory) and read back
/// only if their CRC-32C matches. Layout: 4-byte magic, u32 format version, u32 payload length,
/// payload, u32 CRC-32C of everything before it.
/// </summary>
public static class ChecksummedFile
{
    private const int HeaderSize = 12;

    public static void Write(string path, string magic, uint version, ReadOnlySpan<byte> payload)
    {
        var magicBytes = MagicBytes(magic);
        var bytes = new byte[HeaderSize + payload.Length + 4];
        magicBytes.CopyTo(bytes, 0);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(4), version);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(8), (uint)payload.Length);
        payload.CopyTo(bytes.AsSpan(HeaderSize));
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(HeaderSize + payload.Length), Crc32C.Compute(bytes.AsSpan(0, HeaderSize + payload.Length)));
        AtomicFile.Write(path, bytes);
    }

    /// <summary>Reads and verifies a file; returns the payload and its format version.</summary>
    public static (byte[] Payload, uint Version) Read(string path, string magic)
    {
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length < HeaderSize + 4)
            throw new CorruptFileException(path, $"only {bytes.Length} bytes, shorter than a header");
        if (!bytes.AsSpan(0, 4).SequenceEqual(MagicBytes(magic)))
            throw new CorruptFileException(path, $"wrong magic (expected '{magic}')");
        uint version = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(4));
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(8));
        if (length != bytes.Length - HeaderSize - 4)
            throw new CorruptFileException(path, $"payload length {length} does not match the file size {bytes.Length}");
        uint stored = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(bytes.Length - 4));
        uint actual = Crc32C.Compute(bytes.AsSpan(0, bytes.Length - 4));
        if (stored != actual)
            throw new CorruptFileException(path, $"checksum mismatch (stored {stored:X8}, computed {actual:X8})");
        return (bytes.AsSpan(HeaderSize, (int)length).ToArray(), version);
    }

    private static byte[] MagicBytes(string magic)
    {
        var b = Encoding.ASCII.GetBytes(magic);
        if (b.Length != 4) throw new ArgumentException("magic must be 4 ASCII characters", nameof(magic));
        return b;
    }
}
