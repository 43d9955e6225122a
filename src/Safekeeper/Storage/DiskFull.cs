using Storage.Core.Grpc;

namespace Storage.Safekeeper.Storage;

/// <summary>
/// Recognises a full disk, the one storage failure a safekeeper waits out: the write,
/// preallocation or control-file save that hit it changed nothing (WalStore preallocates before
/// writing, a control file is replaced atomically, and state changes in memory only after a save),
/// so the proposer is refused and reconnects later, and the same request then succeeds.
/// </summary>
internal static class DiskFull
{
    // Linux errno values: .NET reports them as the IOException's HResult.
    private const int ENOSPC = 28, EDQUOT = 122;

    public static bool Is(Exception e) => e is IOException { HResult: ENOSPC or EDQUOT };

    public static RpcException Refusal(ulong nodeId, Exception e) =>
        new(GrpcStatusCode.ResourceExhausted, $"disk full on safekeeper {nodeId}: {e.Message}");
}
