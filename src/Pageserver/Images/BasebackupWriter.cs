using System.Formats.Tar;
using Storage.Core;
using Storage.Core.Postgres;
using Storage.Pageserver.Wal;

namespace Storage.Pageserver.Images;

/// <summary>
/// Writes a basebackup at an LSN as one tar: the image's files (less the replay instance's own
/// files and any WAL), then pg_wal with the segments from the image's redo point up to the LSN,
/// the bytes after the LSN zeroed, so PostgreSQL's recovery ends exactly there. The last segment's
/// entry ends at the LSN (a segment of zeros is not worth sending): readers extend pg_wal files
/// shorter than a segment with zeros (<c>PageserverBasebackupSource</c> does). An initdb image
/// is a clean shutdown: its pg_control is marked crashed so that PostgreSQL replays at all.
/// </summary>
internal static class BasebackupWriter
{
    private const uint PgTimeline = 1;

    public static async Task WriteAsync(Stream imageTar, ImageLayer image, WalSegmentStore wal, Lsn lsn, Stream output, CancellationToken ct)
    {
        if (lsn < image.End) throw new ArgumentException($"a basebackup at {lsn} cannot start from the image at {image.End}");
        await using var writer = new TarWriter(output, TarEntryFormat.Pax, leaveOpen: true);
        await using (var reader = new TarReader(imageTar))
        {
            while (await reader.GetNextEntryAsync(copyData: false, ct) is { } entry)
            {
                var name = entry.Name.StartsWith("./", StringComparison.Ordinal) ? entry.Name[2..] : entry.Name;
                if (name.StartsWith("pg_wal/", StringComparison.Ordinal) || ReplayInstance.ReplayOnlyFiles.Contains(name)) continue;
                if (name == PgControlFile.RelativePath && image.Kind == ImageKind.ShutDown)
                {
                    await writer.WriteEntryAsync(MarkedForReplay(entry, name), ct);
                    continue;
                }
                await writer.WriteEntryAsync(entry, ct);
            }
        }
        await WriteWalAsync(writer, image, wal, lsn, ct);
    }

    /// <summary>
    /// Only the pg_wal part, for a caller that holds the image's files already (from a basebackup at
    /// the image's end): together they are the same data directory as <see cref="WriteAsync"/> gives.
    /// </summary>
    public static async Task WriteWalOnlyAsync(ImageLayer image, WalSegmentStore wal, Lsn lsn, Stream output, CancellationToken ct)
    {
        if (lsn < image.End) throw new ArgumentException($"a basebackup at {lsn} cannot start from the image at {image.End}");
        await using var writer = new TarWriter(output, TarEntryFormat.Pax, leaveOpen: true);
        await WriteWalAsync(writer, image, wal, lsn, ct);
    }

    /// <summary>pg_wal with the segments from the image's redo point to lsn, the bytes after lsn zeroed.</summary>
    private static async Task WriteWalAsync(TarWriter writer, ImageLayer image, WalSegmentStore wal, Lsn lsn, CancellationToken ct)
    {
        await writer.WriteEntryAsync(DirectoryEntry("pg_wal/"), ct);
        await writer.WriteEntryAsync(DirectoryEntry("pg_wal/archive_status/"), ct);
        var geometry = wal.Geometry;
        var last = geometry.SegmentNumber(lsn);
        for (var segment = geometry.SegmentNumber(image.Redo); segment <= last; segment++)
        {
            var entry = new PaxTarEntry(TarEntryType.RegularFile, "pg_wal/" + geometry.SegmentFileName(PgTimeline, segment))
            {
                Mode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
                DataStream = new SegmentCutStream(wal, segment, lsn, segment == last ? geometry.SegmentOffset(lsn) : geometry.SegmentSize),
            };
            await writer.WriteEntryAsync(entry, ct);
        }
    }

    private static PaxTarEntry MarkedForReplay(TarEntry entry, string name)
    {
        using var data = new MemoryStream();
        entry.DataStream!.CopyTo(data);
        var control = PgControlFile.Parse(name, data.ToArray());
        control.SetState(DatabaseState.InProduction);
        return new PaxTarEntry(TarEntryType.RegularFile, name) { Mode = entry.Mode, DataStream = new MemoryStream(control.Bytes.ToArray()) };
    }

    private static PaxTarEntry DirectoryEntry(string name) =>
        new(TarEntryType.Directory, name) { Mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute };

    /// <summary>The first <paramref name="length"/> bytes of a segment from the layer store, zeros from <c>cut</c> on.</summary>
    private sealed class SegmentCutStream(WalSegmentStore wal, ulong segment, Lsn cut, int length) : Stream
    {
        private readonly Lsn _start = wal.Geometry.SegmentStart(segment);
        private long _position;

        public override int Read(Span<byte> buffer)
        {
            int n = (int)Math.Min(buffer.Length, Length - _position);
            if (n <= 0) return 0;
            var from = _start + (ulong)_position;
            var part = buffer[..n];
            long valid = cut > from ? Math.Min(n, cut - from) : 0;
            if (valid > 0) wal.Read(from, part[..(int)valid]);
            part[(int)valid..].Clear();
            _position += n;
            return n;
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));
        public override bool CanRead => true;
        // Seekable so the tar writer can take the length without buffering the segment.
        public override bool CanSeek => true;
        public override bool CanWrite => false;
        public override long Length => length;
        public override long Position { get => _position; set => _position = value; }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => _position = origin switch
        {
            SeekOrigin.Begin => offset,
            SeekOrigin.Current => _position + offset,
            _ => Length + offset,
        };
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
