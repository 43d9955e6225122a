using System.Text.RegularExpressions;
using Storage.Core.Grpc;

namespace Storage.Core.Api;

/// <summary>
/// The error a safekeeper answers a read of WAL it already trimmed with (FAILED_PRECONDITION,
/// naming the first LSN it still holds), built and recognised in one place so the proposer can
/// act on it (see WalProposer's recovery).
/// </summary>
public static partial class WalRemovedError
{
    public static RpcException Create(Lsn requested, Lsn firstAvailable, ulong nodeId) =>
        new(GrpcStatusCode.FailedPrecondition,
            $"WAL at {requested} was removed from safekeeper {nodeId} (it is in object storage); first available LSN {firstAvailable}");

    /// <summary>The first available LSN named by a <see cref="Create"/>d error, or null for any other error.</summary>
    public static Lsn? FirstAvailable(RpcException error)
    {
        if (error.Status != GrpcStatusCode.FailedPrecondition) return null;
        var m = Pattern().Match(error.Detail);
        return m.Success ? Lsn.Parse(m.Groups[1].Value) : null;
    }

    [GeneratedRegex(@"first available LSN ([0-9A-Fa-f]+/[0-9A-Fa-f]+)")]
    private static partial Regex Pattern();
}
