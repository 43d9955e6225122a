namespace Storage.ComputeProxy.Proxy;

/// <summary>The SQLSTATEs the proxy itself answers with (always with severity FATAL, then it closes).</summary>
public static class SqlStates
{
    /// <summary>A malformed, oversized, truncated or out-of-order packet; no startup packet in time.</summary>
    public const string ProtocolViolation = "08P01";
    /// <summary>The connection names no endpoint (and there is no default), an invalid one, or two different ones.</summary>
    public const string RejectedEstablishment = "08004";
    /// <summary>The endpoint does not exist (as PostgreSQL answers for a database that does not exist).</summary>
    public const string UnknownEndpoint = "3D000";
    /// <summary>The endpoint's compute did not start in time, or could not be reached after the retries.</summary>
    public const string UnableToConnect = "08001";
    /// <summary>The proxy is shutting down.</summary>
    public const string AdminShutdown = "57P01";
}

/// <summary>
/// A connection the proxy refuses: the client gets an ErrorResponse with <see cref="SqlState"/>
/// and <see cref="Exception.Message"/>; <see cref="Reason"/> labels the failure metric.
/// </summary>
public sealed class ProxyRejectException(string sqlState, string reason, string message, string? hint = null) : Exception(message)
{
    public string SqlState { get; } = sqlState;
    public string Reason { get; } = reason;
    public string? Hint { get; } = hint;

    public static ProxyRejectException Protocol(string message) => new(SqlStates.ProtocolViolation, "protocol", message);
}
