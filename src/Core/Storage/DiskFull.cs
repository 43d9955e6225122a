namespace Storage.Core.Storage;

/// <summary>
/// Recognises a full disk (ENOSPC, or EDQUOT for a quota): the one storage failure services wait
/// out rather than treat as damage. Every persistent write is atomic or preallocated first, so the
/// write that hit it changed nothing and the same request succeeds once there is space again.
/// </summary>
public static class DiskFull
{
    // Linux errno values: .NET reports them as the IOException's HResult.
    private const int ENOSPC = 28, EDQUOT = 122;

    /// <summary>Whether <paramref name="e"/>, or an exception inside it, is a full disk.</summary>
    public static bool Is(Exception? e)
    {
        for (; e is not null; e = e.InnerException)
        {
            if (e is IOException io && (io.HResult is ENOSPC or EDQUOT || io.Message.Contains("No space left on device", StringComparison.Ordinal)
                || io.Message.Contains("Disk quota exceeded", StringComparison.Ordinal))) return true;
            if (e is AggregateException aggregate && aggregate.InnerExceptions.Any(Is)) return true;
        }
        return false;
    }
}
