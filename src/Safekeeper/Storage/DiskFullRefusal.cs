using Storage.Core.Grpc;

namespace Storage.Safekeeper.Storage;

/// <summary>
/// A full disk on a safekeeper (<see cref="Core.Storage.DiskFull"/>): the write, preallocation or
/// control-file save that hit it changed nothing (WalStore preallocates before writing, a control
/// file is replaced atomically, and state changes in memory only after a save), so the proposer is
/// refused and reconnects later, and the same request then succeeds.
/// </summary>
internal static class DiskFullRefusal
{
    public static RpcException Create(ulong nodeId, Exception e) =>
        new(GrpcStatusCode.ResourceExhausted, $"disk full on safekeeper {nodeId}: {e.Message}");
}
