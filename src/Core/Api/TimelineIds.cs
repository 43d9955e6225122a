namespace Storage.Core.Api;

/// <summary>Tenant and timeline ids: 32 lower-case hex characters, like Neon's.</summary>
public static class TimelineIds
{
    public static bool IsValid(string? id) =>
        id is { Length: 32 } && id.All(c => c is >= '0' and <= '9' or >= 'a' and <= 'f');

    public static string New() => Guid.NewGuid().ToString("N");

    /// <summary>For request handlers: <see cref="Errors.InvalidRequestException"/> unless both ids are well-formed.</summary>
    public static void EnsureValid(string tenantId, string timelineId)
    {
        if (!IsValid(tenantId) || !IsValid(timelineId))
            throw new Errors.InvalidRequestException($"'{tenantId}'/'{timelineId}' is not a tenant/timeline id (32 hex characters each)");
    }

    /// <summary>Lower-cases and checks an id; throws with a message naming the field.</summary>
    public static string Normalize(string? id, string what)
    {
        var lower = id?.ToLowerInvariant();
        if (!IsValid(lower)) throw new ArgumentException($"{what} must be 32 hex characters, got '{id}'");
        return lower!;
    }
}
