namespace Storage.Core.Errors;

/// <summary>What kind of failure a <see cref="ServiceException"/> is; the edge (gRPC, HTTP) turns it into a status code.</summary>
public enum FailureKind
{
    /// <summary>The request itself is malformed (a bad id, a missing field).</summary>
    InvalidArgument,
    /// <summary>What the request names does not exist (a timeline, an endpoint).</summary>
    NotFound,
    AlreadyExists,
    /// <summary>The request does not fit the current state (not attached here, not idle, retained no longer).</summary>
    FailedPrecondition,
    /// <summary>A newer term or generation superseded the caller: it must stop.</summary>
    Superseded,
    /// <summary>The request asks for a position outside what exists (before the start, beyond the commit LSN).</summary>
    OutOfRange,
    /// <summary>Not possible now, likely later (not ingested yet, a peer is down): retry.</summary>
    Unavailable,
    /// <summary>Out of a resource (a full disk): retry once it is freed.</summary>
    ResourceExhausted,
    /// <summary>Stored data failed its checks.</summary>
    DataLoss,
    Unauthenticated,
    PermissionDenied,
}

/// <summary>
/// A failure of a service's domain code that a caller should see as such: domain code throws these
/// (never transport types), and one interceptor per edge maps <see cref="Kind"/> to a status code
/// with the message and <see cref="Details"/> (sent as trailers, for callers that act on them).
/// </summary>
public class ServiceException(FailureKind kind, string message, Exception? inner = null) : Exception(message, inner)
{
    public FailureKind Kind { get; } = kind;

    /// <summary>Machine-readable facts about the failure (e.g. the first LSN still held), by name.</summary>
    public virtual IReadOnlyDictionary<string, string> Details => new Dictionary<string, string>();
}

/// <summary>Something the request names does not exist.</summary>
public sealed class NotFoundException(string message) : ServiceException(FailureKind.NotFound, message);

/// <summary>The request is malformed.</summary>
public sealed class InvalidRequestException(string message, Exception? inner = null) : ServiceException(FailureKind.InvalidArgument, message, inner);

/// <summary>The request does not fit the current state.</summary>
public sealed class PreconditionFailedException(string message, Exception? inner = null) : ServiceException(FailureKind.FailedPrecondition, message, inner);

/// <summary>Not possible now; the caller retries (not ingested yet, a dependency is down).</summary>
public sealed class TemporarilyUnavailableException(string message, Exception? inner = null) : ServiceException(FailureKind.Unavailable, message, inner);

/// <summary>A position outside the range that exists.</summary>
public sealed class OutOfRangeException(string message) : ServiceException(FailureKind.OutOfRange, message);

/// <summary>Stored data failed its checks.</summary>
public sealed class DataLossException(string message, Exception? inner = null) : ServiceException(FailureKind.DataLoss, message, inner);

/// <summary>A disk is full; the request changed nothing and succeeds once there is space.</summary>
public sealed class DiskFullException(string message, Exception inner) : ServiceException(FailureKind.ResourceExhausted, message, inner);

/// <summary>What the request would create exists already (differently).</summary>
public sealed class AlreadyExistsException(string message) : ServiceException(FailureKind.AlreadyExists, message);
