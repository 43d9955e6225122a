namespace Storage.Core.Grpc;

/// <summary>
/// A call that ended with a non-OK status. Thrown by the client for every failure, and thrown by
/// server handlers to end a call with a specific status and detail.
/// </summary>
public sealed class RpcException : Exception
{
    public RpcException(GrpcStatusCode status, string detail)
        : base($"{status}: {detail}")
    {
        Status = status;
        Detail = detail;
    }

    public RpcException(GrpcStatusCode status, string detail, Exception? inner)
        : base($"{status}: {detail}", inner)
    {
        Status = status;
        Detail = detail;
    }

    public GrpcStatusCode Status { get; }

    public string Detail { get; }

    /// <summary>
    /// Whether a failed call shows that nothing serves there (connection refused or dropped), as
    /// opposed to a timeout, which a live but slow or starved server also causes.
    /// </summary>
    public static bool IsRefusal(Exception e) => e is RpcException { Status: GrpcStatusCode.Unavailable };
}
