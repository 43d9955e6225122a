using Grpc = Storage.Core.Grpc;
using Storage.Core;
using Storage.Core.Wal;

namespace Storage.Pageserver.Wal;

/// <summary>Checks that an LSN is a record boundary by decoding up to it.</summary>
internal static class WalBoundaries
{
    /// <summary>
    /// Decodes from the record start <paramref name="from"/> and returns the start of the record that
    /// ends exactly at <paramref name="end"/>; throws when no record ends there.
    /// </summary>
    public static Lsn RecordEndingAt(WalSegmentStore wal, Lsn from, Lsn end)
    {
        var decoder = new WalDecoder(from, wal.Geometry);
        var buffer = new byte[1 << 20];
        var position = from;
        Lsn previousEnd = from, previousStart = Lsn.Zero;
        while (true)
        {
            while (decoder.TryDecodeNext(out var record))
            {
                if (record.EndLsn == end || (record.IsSwitch && decoder.NextLsn == end)) return record.Lsn;
                if (record.EndLsn > end)
                    throw new Grpc.RpcException(Grpc.GrpcStatusCode.InvalidArgument,
                        $"{end} is not a WAL record boundary: the record at {record.Lsn} spans it (boundaries nearby: {previousEnd}, {record.EndLsn})");
                (previousEnd, previousStart) = (record.EndLsn, record.Lsn);
            }
            if (decoder.ReachedEndOfWal || position >= end + (ulong)buffer.Length)
                throw new Grpc.RpcException(Grpc.GrpcStatusCode.InvalidArgument, $"{end} is not a WAL record boundary (the last record before it ends at {previousEnd})");
            wal.Read(position, buffer);
            decoder.Feed(buffer);
            position += (ulong)buffer.Length;
        }
    }
}
