using System.Globalization;
using Grpc.Core;
using Storage.Core.Errors;

namespace Storage.Core.Rpc;

/// <summary>What callers read from a failed call: the facts a service attached, and whether the peer is simply not there.</summary>
public static class RpcErrors
{
    /// <summary>
    /// Whether the peer could not be reached or refused the call as unavailable: nothing listens
    /// (the process is gone), or it is not ready. Timeouts are not refusals.
    /// </summary>
    public static bool IsRefusal(Exception e) => e is RpcException { StatusCode: StatusCode.Unavailable };

    /// <summary>A failure in a line for logs and users: a call's status and its detail ("Unavailable: Error connecting to ..."), anything else its message.</summary>
    public static string Describe(Exception e) => e is RpcException rpc ? $"{rpc.StatusCode}: {rpc.Status.Detail}" : e.Message;

    /// <summary>A detail a <see cref="ServiceException"/> sent as a trailer, or null.</summary>
    public static string? Detail(this RpcException e, string name) => e.Trailers.GetValue(name);

    /// <summary>The first LSN a safekeeper still holds, from a <see cref="WalRemovedException"/>; null for any other error.</summary>
    public static Lsn? FirstAvailableLsn(this RpcException e) =>
        e.StatusCode == StatusCode.FailedPrecondition && e.Detail(WalRemovedException.FirstAvailableDetail) is { } text && Lsn.TryParse(text, out var lsn) ? lsn : null;

    /// <summary>The term of the safekeeper that refused a proposer, from a <see cref="StaleTermException"/>; null otherwise.</summary>
    public static ulong? SafekeeperTerm(this RpcException e) =>
        e.StatusCode == StatusCode.Aborted && e.Detail(StaleTermException.TermDetail) is { } text
        && ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var term) ? term : null;
}
