namespace Storage.Safekeeper.Replication;

/// <summary>The SQLSTATEs the safekeeper's walsender answers with (PostgreSQL's errcodes.txt).</summary>
internal static class SqlStates
{
    public const string ProtocolViolation = "08P01";
    public const string InvalidPassword = "28P01";
    public const string InvalidAuthorization = "28000";
    /// <summary>The timeline named is not on this safekeeper (as PostgreSQL answers for a missing database).</summary>
    public const string UnknownTimeline = "3D000";
    /// <summary>Requested WAL that was removed (PostgreSQL's walsender: a missing segment file).</summary>
    public const string UndefinedFile = "58P01";
    public const string SyntaxError = "42601";
    public const string UndefinedObject = "42704";
    public const string FeatureNotSupported = "0A000";
    public const string CannotConnectNow = "57P03";
    public const string AdminShutdown = "57P01";
    public const string InternalError = "XX000";
}

/// <summary>
/// What the client is told as an ErrorResponse. A <see cref="Fatal"/> one closes the connection;
/// otherwise the session goes on (ReadyForQuery). <see cref="Reason"/> labels the refusal metric.
/// </summary>
internal sealed class ReplicationError(string sqlState, string message, bool fatal = false, string reason = "error", string? hint = null) : Exception(message)
{
    public string SqlState { get; } = sqlState;
    public bool Fatal { get; } = fatal;
    public string Reason { get; } = reason;
    public string? Hint { get; } = hint;

    public static ReplicationError Protocol(string message) => new(SqlStates.ProtocolViolation, message, fatal: true, reason: "protocol");
}
