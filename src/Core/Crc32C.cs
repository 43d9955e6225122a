using System.Runtime.Intrinsics.X86;

namespace Storage.Core;

/// <summary>
/// CRC-32C (Castagnoli), the checksum PostgreSQL uses for WAL records and that this project uses
/// for every persistent file. Uses the SSE4.2 instruction when present.
/// Append() continues a running CRC in PostgreSQL's convention: start with <see cref="Initial"/>,
/// append the pieces, then <see cref="Finish"/>.
/// </summary>
public static class Crc32C
{
    public const uint Initial = 0xFFFFFFFF;
    private static readonly uint[] Table = BuildTable();

    public static uint Compute(ReadOnlySpan<byte> data) => Finish(Append(Initial, data));

    public static uint Finish(uint crc) => crc ^ 0xFFFFFFFF;

    public static uint Append(uint crc, ReadOnlySpan<byte> data)
    {
        if (Sse42.X64.IsSupported)
        {
            ulong c = crc;
            while (data.Length >= 8)
            {
                c = Sse42.X64.Crc32(c, System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(data));
                data = data[8..];
            }
            crc = (uint)c;
        }
        if (Sse42.IsSupported)
        {
            foreach (var b in data) crc = Sse42.Crc32(crc, b);
            return crc;
        }
        foreach (var b in data) crc = Table[(crc ^ b) & 0xFF] ^ (crc >> 8);
        return crc;
    }

    private static uint[] BuildTable()
    {
        var table = new uint[256];
        for (uint i = 0; i < 256; i++)
        {
            uint c = i;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0x82F63B78 ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
        return table;
    }
}
