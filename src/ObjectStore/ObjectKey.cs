using System.Text;

namespace Storage.ObjectStore;

/// <summary>
/// The rules for keys, the same for every backend so that data moves between them: a relative
/// '/'-separated path of non-empty segments, none "." or "..", no NUL or backslash, at most 1024
/// UTF-8 bytes (S3's limit), and not under <see cref="Reserved"/> (the local backend's temp files).
/// </summary>
public static class ObjectKey
{
    public const string Reserved = ".objstore-tmp";
    public const int MaxBytes = 1024;

    /// <summary>Throws <see cref="ArgumentException"/> saying what is wrong with <paramref name="key"/>.</summary>
    public static void Validate(string key, string paramName = "key")
    {
        if (Problem(key, isPrefix: false) is string problem)
            throw new ArgumentException($"invalid object key '{key}': {problem}", paramName);
    }

    /// <summary>
    /// A list prefix may be empty or end inside a segment or with '/', but the segments it does
    /// contain follow the key rules.
    /// </summary>
    public static void ValidatePrefix(string prefix, string paramName = "prefix")
    {
        ArgumentNullException.ThrowIfNull(prefix, paramName);
        if (prefix.Length == 0) return;
        // "a/b/" names the same segments as key "a/b"; in "a/b" the last segment may be unfinished.
        bool finished = prefix.EndsWith('/');
        if (Problem(finished ? prefix[..^1] : prefix, isPrefix: !finished) is string problem)
            throw new ArgumentException($"invalid object key prefix '{prefix}': {problem}", paramName);
    }

    public static void ValidateRange(long offset, long length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        ArgumentOutOfRangeException.ThrowIfNegative(length);
    }

    private static string? Problem(string? key, bool isPrefix)
    {
        if (string.IsNullOrEmpty(key)) return "it is empty";
        if (key.StartsWith('/')) return "it must be relative (no leading '/')";
        if (key.Contains('\0')) return "it contains a NUL character";
        if (key.Contains('\\')) return "it contains a backslash (the separator is '/')";
        if (Encoding.UTF8.GetByteCount(key) > MaxBytes) return $"it is longer than {MaxBytes} UTF-8 bytes";
        var segments = key.Split('/');
        if (segments.Any(s => s.Length == 0)) return "it has an empty segment ('//' or a trailing '/')";
        // An unfinished last segment of a prefix ("a/.") may still become a valid name (".x").
        var whole = isPrefix ? segments[..^1] : segments;
        if (whole.Any(s => s is "." or "..")) return "'.' and '..' segments are not allowed";
        if (!isPrefix && segments[^1] is "." or "..") return "'.' and '..' segments are not allowed";
        if (segments[0] == Reserved) return $"'{Reserved}' is reserved";
        return null;
    }
}
